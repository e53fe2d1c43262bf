output "repository_urls" {
  description = "Service -> repository URL (<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<service>)."
  value       = { for name, repo in aws_ecr_repository.service : name => repo.repository_url }
}

output "repository_arns" {
  description = "Service -> repository ARN (for IAM policies that allow push or pull)."
  value       = { for name, repo in aws_ecr_repository.service : name => repo.arn }
}

output "registry_id" {
  description = "AWS account ID that owns the registry."
  value       = one(distinct([for repo in aws_ecr_repository.service : repo.registry_id]))
}

output "registry" {
  description = "Registry host, <account>.dkr.ecr.<region>.amazonaws.com (what `docker login` takes)."
  value       = one(distinct([for repo in aws_ecr_repository.service : split("/", repo.repository_url)[0]]))
}
