variable "name" {
  description = "Name of the security group (also its Name tag)."
  type        = string
}

variable "description" {
  description = "Description of the security group (changing it replaces the group)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the security group."
  type        = string
}

variable "port" {
  description = "The one TCP port admitted."
  type        = number

  validation {
    condition     = var.port >= 1 && var.port <= 65535 && floor(var.port) == var.port
    error_message = "port must be a whole number between 1 and 65535."
  }
}

variable "what" {
  description = "What listens on the port, for the rule descriptions (\"<what> from <source>\"), e.g. \"Redis\"."
  type        = string
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may connect on the port."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "Private CIDRs that may connect on the port. Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidr_blocks : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "allowed_cidr_blocks must be IPv4 CIDR blocks and not 0.0.0.0/0."
  }
}

variable "tags" {
  description = "Tags of the security group."
  type        = map(string)
  default     = {}
}
