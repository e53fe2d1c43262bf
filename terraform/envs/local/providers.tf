# The AWS provider against the moto server of the local platform (`python -m
# local.platform up` starts it on 127.0.0.1; the terraform activity writes its URL to
# platform.tfvars.json as aws_endpoint). Every service this configuration touches has
# its endpoint here: a service without one would go to the real AWS.
provider "aws" {
  region = var.aws_region

  # moto's fixed test credentials: they are not secrets and open nothing but moto.
  access_key = "testing"
  secret_key = "testing"

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {
    dynamodb = var.aws_endpoint
    ec2      = var.aws_endpoint
    ecr      = var.aws_endpoint
    iam      = var.aws_endpoint
    kms      = var.aws_endpoint
    s3       = var.aws_endpoint
    sts      = var.aws_endpoint
  }

  default_tags {
    tags = local.tags
  }
}
