# The release reads these names (build, deploy); keep them.

output "cluster_name" {
  description = "Name of the EKS cluster the services are deployed to."
  value       = module.eks.cluster_name
}

output "region" {
  description = "AWS region of the environment."
  value       = var.aws_region
}

output "registry" {
  description = "ECR registry host, <account>.dkr.ecr.<region>.amazonaws.com."
  value       = local.registry
}

output "image_repositories" {
  description = "Service -> ECR repository URL the build pushes to and the cluster pulls from."
  value       = local.image_repositories
}

output "rds_endpoint" {
  description = "host:port of the PostgreSQL database (TLS required; master credentials in master_user_secret_arn)."
  value       = module.rds.endpoint
}

output "redis_endpoint" {
  description = "host:port of the Redis primary (TLS required)."
  value       = module.redis.primary_endpoint
}

output "kafka_bootstrap_brokers" {
  description = "Comma-separated TLS bootstrap brokers of the Kafka cluster."
  value       = module.kafka.bootstrap_brokers
}

# ---- for operators and other configurations -----------------------------------------

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (IAM roles for service accounts)."
  value       = module.eks.oidc_provider_arn
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "rds_master_user_secret_arn" {
  description = "Secrets Manager secret holding the database's master credentials (managed by RDS)."
  value       = module.rds.master_user_secret_arn
}
