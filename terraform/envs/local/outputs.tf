output "registry" {
  description = "host:port of the image registry the local build pushes to."
  value       = var.registry
}

output "image_repository" {
  description = "Repository prefix of the service images (<registry>/go-coffee)."
  value       = local.image_repository
}

output "release_version" {
  description = "Version recorded by the last apply."
  value       = terraform_data.release.output.version
}

output "environments" {
  description = "Environment name -> entry point URL."
  value       = { for name, env in terraform_data.environment : name => env.output.entrypoint }
}

# Deliberately no `image_repositories`: that output tells the build to push to ECR,
# and moto's ECR stores metadata only; the local build keeps pushing to `registry`.
output "ecr_repositories" {
  description = "Service -> moto ECR repository URL (metadata only; images stay in the local registry)."
  value       = module.ecr.repository_urls
}

output "artifacts_bucket" {
  description = "Name of the artifacts S3 bucket in moto."
  value       = aws_s3_bucket.artifacts.bucket
}

output "lock_table" {
  description = "Name of the DynamoDB table the S3 backend locks state in."
  value       = aws_dynamodb_table.terraform_lock.name
}

output "vpc_id" {
  description = "ID of the local network's VPC in moto."
  value       = module.network.vpc_id
}
