variable "identifier" {
  description = "Identifier of the DB instance (and prefix of its subnet group, parameter group and security group)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,49}[a-z0-9]$", var.identifier))
    error_message = "identifier must be 2-51 lowercase letters, digits or '-', start with a letter and not end with '-'."
  }
}

variable "engine_version" {
  description = "PostgreSQL major or major.minor version, e.g. \"16\" or \"16.4\"."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^1[3-9](\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 13 or later, e.g. \"16\" or \"16.4\"."
  }
}

variable "instance_class" {
  description = "DB instance class, e.g. \"db.t4g.medium\"."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS class such as \"db.t4g.medium\"."
  }
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.allocated_storage >= 20
    error_message = "allocated_storage must be at least 20 GiB."
  }
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB (>= allocated_storage)."
  type        = number
  default     = 1000
}

variable "db_name" {
  description = "Name of the database created with the instance."
  type        = string
  default     = "go_coffee"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must start with a letter and hold only lowercase letters, digits and '_' (at most 63)."
  }
}

variable "username" {
  description = "Master user name. Its password is generated and kept by RDS in Secrets Manager: it never appears in code, variables or state."
  type        = string
  default     = "go_coffee_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.username)) && !contains(["admin", "postgres", "rdsadmin"], var.username)
    error_message = "username must start with a letter, hold only lowercase letters, digits and '_', and not be a reserved name (admin, postgres, rdsadmin)."
  }
}

variable "vpc_id" {
  description = "VPC of the instance."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group (two zones at least)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must list at least two subnets in different zones (an RDS subnet group requires it)."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may connect on 5432 (e.g. the EKS cluster security group)."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "Private CIDRs that may connect on 5432. Never 0.0.0.0/0."
  type        = list(string)
  default     = []
}

variable "multi_az" {
  description = "Keep a synchronous standby in another zone."
  type        = bool
  default     = true
}

variable "backup_retention_period" {
  description = "Days of automated backups (1-35)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35
    error_message = "backup_retention_period must be between 1 and 35 days."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (turn off deliberately, in its own apply, before destroying)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
