provider "aws" {
  region = var.aws_region

  # refuse to touch any other account than the one this environment lives in
  allowed_account_ids = var.aws_account_id == null ? null : [var.aws_account_id]

  default_tags {
    tags = local.tags
  }
}
