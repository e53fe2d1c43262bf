terraform {
  # The plan JSON fields the activities read ("applyable") need 1.8 or later.
  required_version = ">= 1.8"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 6.0"
    }
  }

  # The state path is given at init (-backend-config=path=<home>/terraform/state/<root path>.tfstate)
  # so the state lives in the platform's home, never in the repository tree.
  backend "local" {}
}
