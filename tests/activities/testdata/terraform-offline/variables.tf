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
