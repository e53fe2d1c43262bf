terraform {
  required_version = ">= 1.8"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 6.0"
    }
  }

  # Partial configuration: bucket, key, region and dynamodb_table come from
  # backend.hcl at init (the terraform activity passes -backend-config=backend.hcl
  # when the file exists; see backend.hcl.example and terraform/README.md).
  backend "s3" {}
}
