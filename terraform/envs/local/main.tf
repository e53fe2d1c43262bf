# The local platform (Temporal dev server, registry, Traefik, Prometheus, moto) is
# started by local/platform.py. This configuration creates, in moto, the AWS side a
# release expects (ECR repositories, the artifacts bucket, the state lock table, the
# network) with the same modules the cloud environments use, and records the release
# with the built-in terraform_data resource.
#
# Images still go to the local registry: moto's ECR keeps metadata only.

# One record per environment: its name, its entry point and the services routed there.
# The release version is deliberately NOT part of it, so a new release updates only
# terraform_data.release below.
resource "terraform_data" "environment" {
  for_each = toset(local.environments)

  input = {
    name       = each.key
    entrypoint = lookup(var.entrypoints, each.key, "")
    services   = local.services
  }
}

# The release itself. A version change is an in-place update of `input` (never a
# replace: no triggers_replace here), so a normal release plans 0 to destroy.
resource "terraform_data" "release" {
  input = {
    version          = var.release_version
    services         = local.services
    environments     = local.environments
    image_repository = local.image_repository
  }
}

# One ECR repository per service of the release: removing a service plans its
# repository's destroy, which the plan review shows.
module "ecr" {
  source = "../../modules/ecr"

  services     = toset(local.services)
  force_delete = true # moto's repositories hold no image bytes
}

module "network" {
  source = "../../modules/network"

  name               = var.name_prefix
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  enable_nat_gateway = false
}

# Encrypts the artifacts bucket and the lock table with a key of our own.
resource "aws_kms_key" "artifacts" {
  description             = "${var.name_prefix}: artifacts bucket and Terraform lock table"
  enable_key_rotation     = true
  deletion_window_in_days = 7
}

# Release artifacts (SARIF reports, plan files) and, in a cloud account, the
# Terraform state of envs/staging and envs/production.
resource "aws_s3_bucket" "artifacts" {
  bucket        = "${var.name_prefix}-artifacts"
  force_destroy = true # moto only: a real account's bucket keeps its objects
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.artifacts.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# The table the S3 backend locks the state in (partition key LockID, as terraform wants).
resource "aws_dynamodb_table" "terraform_lock" {
  name         = "${var.name_prefix}-terraform-lock"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.artifacts.arn
  }
}
