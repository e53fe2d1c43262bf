output "bootstrap_brokers" {
  description = "Comma-separated host:port TLS bootstrap brokers for the chosen client authentication."
  value       = var.client_authentication == "sasl_iam" ? aws_msk_cluster.this.bootstrap_brokers_sasl_iam : aws_msk_cluster.this.bootstrap_brokers_tls
}

output "cluster_arn" {
  description = "ARN of the MSK cluster (for kafka-cluster:* IAM policies with sasl_iam)."
  value       = aws_msk_cluster.this.arn
}

output "zookeeper_connect_string_tls" {
  description = "TLS ZooKeeper connection string (admin tools of older Kafka versions)."
  value       = aws_msk_cluster.this.zookeeper_connect_string_tls
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = module.access.security_group_id
}
