# ---- from the release (the terraform activity passes them as -var name=value) ------
# Accepted so the release can pass them; the infrastructure does not change with them
# (the repositories come from ecr_services, not from the services of one release, so
# releasing one service never plans the destroy of another's repository).

variable "release_version" {
  description = "Version being released (recorded nowhere here; validated like the local environment's)."
  type        = string
  default     = "0.0.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.release_version))
    error_message = "release_version must be a valid image tag: letters, digits, '_', '.', '-' (at most 128 characters)."
  }
}

variable "services" {
  description = "Services of the release: \"api-gateway,producer\" or a JSON list (informational)."
  type        = string
  default     = ""
}

variable "environments" {
  description = "Environments of the release: \"staging,production\" or a JSON list (informational)."
  type        = string
  default     = ""
}

# ---- the environment ---------------------------------------------------------------

variable "environment" {
  description = "Name of this environment: staging or production (terraform.tfvars sets it)."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be \"staging\" or \"production\"."
  }
}

variable "project_name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "go-coffee"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project_name))
    error_message = "project_name must be 2-21 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region of the environment."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region name such as \"us-west-2\"."
  }
}

variable "aws_account_id" {
  description = "The only AWS account terraform may change (null: whichever the credentials belong to)."
  type        = string
  default     = null

  validation {
    condition     = var.aws_account_id == null || can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit AWS account ID."
  }
}

variable "owner" {
  description = "Owner tag of every resource."
  type        = string
  default     = "platform-team"
}

# ---- network -------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "Zones of the subnets (2 or 3: MSK takes one subnet per zone, at most 3)."
  type        = list(string)
  default     = ["us-west-2a", "us-west-2b", "us-west-2c"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "availability_zones must list 2 or 3 zones of aws_region."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone."
  type        = bool
  default     = false
}

variable "flow_logs_retention_days" {
  description = "Days of VPC flow logs in CloudWatch Logs (0: off)."
  type        = number
  default     = 90
}

# ---- EKS -----------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "Kubernetes minor version of the cluster."
  type        = string
  default     = "1.31"
}

variable "eks_endpoint_public_access" {
  description = "Expose the Kubernetes API on the internet, restricted to eks_public_access_cidrs (off: reachable from the VPC only)."
  type        = bool
  default     = false
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach a public Kubernetes API endpoint."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups of the cluster (see modules/eks)."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size      = optional(number, 50)
    labels         = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = optional(string)
      effect = string
    })), [])
  }))
  default = {
    application = {
      instance_types = ["t3.large", "t3.xlarge"]
      min_size       = 2
      max_size       = 6
      desired_size   = 3
      labels         = { "node-type" = "application" }
    }
  }
}

# ---- data stores ---------------------------------------------------------------------

variable "rds_instance_class" {
  description = "Instance class of the PostgreSQL database."
  type        = string
  default     = "db.t4g.medium"
}

variable "rds_multi_az" {
  description = "Keep a standby of the database in another zone."
  type        = bool
  default     = true
}

variable "rds_deletion_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "Node type of the Redis replication group."
  type        = string
  default     = "cache.t4g.medium"
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes: one primary, the rest replicas."
  type        = number
  default     = 2
}

variable "kafka_instance_type" {
  description = "Instance type of the Kafka brokers."
  type        = string
  default     = "kafka.m5.large"
}

variable "kafka_broker_nodes" {
  description = "Number of Kafka brokers (a multiple of the number of zones)."
  type        = number
  default     = 3
}

variable "kafka_client_authentication" {
  description = "Kafka client authentication over TLS: sasl_iam or tls (see modules/msk)."
  type        = string
  default     = "sasl_iam"
}

# ---- images --------------------------------------------------------------------------

variable "ecr_enabled" {
  description = "Create the ECR repositories in this environment. Off (production): the images are pulled from the registry of ecr_registry_account_id, where staging created them, so production runs exactly the bytes staging tested."
  type        = bool
  default     = true
}

variable "ecr_services" {
  description = "Services that get an ECR repository (all of Go Coffee, whatever one release ships)."
  type        = list(string)
  default     = ["api-gateway", "auth-service", "consumer", "producer"]
}

variable "ecr_repository_prefix" {
  description = "Path prefix of the repositories: <prefix>/<service>."
  type        = string
  default     = "go-coffee"
}

variable "ecr_registry_account_id" {
  description = "With ecr_enabled off: account of the registry the images come from (null: this account)."
  type        = string
  default     = null

  validation {
    condition     = var.ecr_registry_account_id == null || can(regex("^[0-9]{12}$", var.ecr_registry_account_id))
    error_message = "ecr_registry_account_id must be a 12-digit AWS account ID."
  }
}

variable "ecr_pull_account_ids" {
  description = "With ecr_enabled on: other accounts (production's) allowed to pull the images."
  type        = list(string)
  default     = []
}
