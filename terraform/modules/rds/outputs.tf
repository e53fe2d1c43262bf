output "endpoint" {
  description = "host:port of the PostgreSQL instance."
  value       = aws_db_instance.this.endpoint
}

output "address" {
  description = "Host name of the PostgreSQL instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the PostgreSQL instance."
  value       = aws_db_instance.this.port
}

output "db_name" {
  description = "Name of the database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret RDS keeps the master credentials in (grant the services read on it, or use IAM database authentication)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = module.access.security_group_id
}
