variable "name" {
  description = "Replication group ID (and prefix of its subnet group, parameter group and security group)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")
    error_message = "name must be 2-40 lowercase letters, digits or '-', start with a letter, not end with '-' nor hold '--'."
  }
}

variable "engine_version" {
  description = "Redis engine version, e.g. \"7.1\"."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^[67]\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be a Redis 6.x or 7.x version such as \"7.1\" (in-transit encryption needs 6 or later)."
  }
}

variable "node_type" {
  description = "Cache node type, e.g. \"cache.t4g.medium\"."
  type        = string
  default     = "cache.t4g.medium"

  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache node type such as \"cache.t4g.medium\"."
  }
}

variable "num_cache_clusters" {
  description = "Nodes in the replication group: one primary and the rest replicas. Two or more turn on automatic failover and Multi-AZ."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be between 1 and 6."
  }
}

variable "vpc_id" {
  description = "VPC of the replication group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must list at least one subnet."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may connect on 6379."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "Private CIDRs that may connect on 6379. Never 0.0.0.0/0."
  type        = list(string)
  default     = []
}

variable "snapshot_retention_limit" {
  description = "Days of automatic snapshots (0 turns them off)."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retention_limit >= 0 && var.snapshot_retention_limit <= 35
    error_message = "snapshot_retention_limit must be between 0 and 35 days."
  }
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
