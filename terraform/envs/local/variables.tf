# Every value reaches Terraform as a string (the activity passes `-var name=value`;
# Terraform converts it to the declared type). The lists are declared as strings and
# accept both forms callers use: comma-separated ("api-gateway,producer") or a JSON
# list ("[\"api-gateway\", \"producer\"]"); locals.tf turns them into lists.

variable "release_version" {
  description = "Version being released (the image tag of every service in the release)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.release_version))
    error_message = "release_version must be a valid image tag: letters, digits, '_', '.', '-' (at most 128 characters)."
  }
}

variable "services" {
  description = "Services of the release: \"api-gateway,producer\" or a JSON list."
  type        = string

  validation {
    condition     = length(compact([for n in try(tolist(jsondecode(var.services)), split(",", var.services)) : trimspace(n)])) > 0
    error_message = "services must name at least one service, e.g. \"api-gateway,producer\"."
  }
}

variable "environments" {
  description = "Environments the release goes through, in order: \"staging,production\" or a JSON list."
  type        = string

  validation {
    condition     = length(compact([for n in try(tolist(jsondecode(var.environments)), split(",", var.environments)) : trimspace(n)])) > 0
    error_message = "environments must name at least one environment, e.g. \"staging,production\"."
  }
}

# The two below describe the embedded local platform; the terraform activity fills
# them from the platform settings (registry port, Traefik entry points).
variable "registry" {
  description = "host:port of the image registry the services are pulled from."
  type        = string
  default     = "127.0.0.1:5000"
}

variable "entrypoints" {
  description = "Environment name -> URL of its Traefik entry point."
  type        = map(string)
  default     = {}
}

# The moto server of the local platform; the terraform activity fills it from the
# platform settings (PlatformSettings.moto_url).
variable "aws_endpoint" {
  description = "URL of the moto server every AWS service endpoint points at, e.g. http://127.0.0.1:5050."
  type        = string
  default     = "http://127.0.0.1:5050"

  validation {
    condition     = can(regex("^https?://[^/\\s]+/?$", var.aws_endpoint))
    error_message = "aws_endpoint must be an http(s) URL with no path, e.g. \"http://127.0.0.1:5050\"."
  }
}

variable "aws_region" {
  description = "Region the moto resources are created in."
  type        = string
  default     = "us-east-1"
}

variable "availability_zones" {
  description = "Zones of the local network's subnets (they must be zones of aws_region)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

variable "name_prefix" {
  description = "Prefix of the bucket, table and network names."
  type        = string
  default     = "brewline-local"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.name_prefix))
    error_message = "name_prefix must be 1-31 lowercase letters, digits or '-' (it starts an S3 bucket name)."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the local network."
  type        = string
  default     = "10.42.0.0/16"
}
