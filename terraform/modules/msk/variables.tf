variable "cluster_name" {
  description = "Name of the MSK cluster (and prefix of its security group and log group)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,63}$", var.cluster_name))
    error_message = "cluster_name must start with a letter and hold only letters, digits and '-' (at most 64)."
  }
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers, e.g. \"3.6.0\"."
  type        = string
  default     = "3.6.0"

  validation {
    condition     = can(regex("^[23]\\.[0-9]+\\.[0-9]+(\\.tiered)?$", var.kafka_version))
    error_message = "kafka_version must be an MSK Kafka version such as \"3.6.0\"."
  }
}

variable "broker_instance_type" {
  description = "Broker instance type, e.g. \"kafka.m5.large\"."
  type        = string
  default     = "kafka.m5.large"

  validation {
    condition     = startswith(var.broker_instance_type, "kafka.")
    error_message = "broker_instance_type must be an MSK broker type such as \"kafka.m5.large\"."
  }
}

variable "number_of_broker_nodes" {
  description = "Brokers in the cluster: a multiple of the number of subnets (one zone each)."
  type        = number
  default     = 3
}

variable "broker_volume_size" {
  description = "EBS storage per broker in GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.broker_volume_size >= 1 && var.broker_volume_size <= 16384
    error_message = "broker_volume_size must be between 1 and 16384 GiB."
  }
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private client subnets, one per zone (2 or 3)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && length(var.subnet_ids) <= 3
    error_message = "subnet_ids must list 2 or 3 subnets in different zones (MSK requires it)."
  }
}

variable "client_authentication" {
  description = "How clients authenticate over TLS: \"sasl_iam\" (IAM roles, e.g. through IRSA; port 9098) or \"tls\" (TLS encryption with no client identity, port 9094; the security group is then the only gate)."
  type        = string
  default     = "sasl_iam"

  validation {
    condition     = contains(["sasl_iam", "tls"], var.client_authentication)
    error_message = "client_authentication must be \"sasl_iam\" or \"tls\"."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may reach the brokers."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "Private CIDRs that may reach the brokers. Never 0.0.0.0/0."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
