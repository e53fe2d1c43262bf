variable "repository_prefix" {
  description = "Path prefix of every repository: <prefix>/<service>."
  type        = string
  default     = "go-coffee"

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.repository_prefix))
    error_message = "repository_prefix must be lowercase ECR path segments (letters, digits, '.', '_', '-', separated by '/'), e.g. \"go-coffee\"."
  }
}

variable "services" {
  description = "Services that get a repository each, e.g. [\"api-gateway\", \"producer\"]."
  type        = set(string)

  validation {
    condition     = length(var.services) > 0 && alltrue([for s in var.services : can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*$", s))])
    error_message = "services must name at least one service, each lowercase letters, digits, '.', '_' or '-' (an ECR path segment)."
  }
}

variable "keep_tagged_images" {
  description = "How many tagged images each repository keeps; older ones expire (the lifecycle policy)."
  type        = number
  default     = 50

  validation {
    condition     = var.keep_tagged_images >= 1 && floor(var.keep_tagged_images) == var.keep_tagged_images
    error_message = "keep_tagged_images must be a whole number of at least 1."
  }
}

variable "untagged_expiry_days" {
  description = "Days after which an untagged image (a superseded layer set, a failed push) expires."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_expiry_days >= 1 && floor(var.untagged_expiry_days) == var.untagged_expiry_days
    error_message = "untagged_expiry_days must be a whole number of days, at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the images; null uses AES256 with an AWS-owned key."
  type        = string
  default     = null
}

variable "force_delete" {
  description = "Delete a repository even if it still holds images (only for throwaway environments)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags of every repository."
  type        = map(string)
  default     = {}
}

variable "pull_account_ids" {
  description = "Other AWS accounts allowed to pull (e.g. production's, when it pulls from staging's registry)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.pull_account_ids : can(regex("^[0-9]{12}$", id))])
    error_message = "pull_account_ids must be 12-digit AWS account IDs."
  }
}
