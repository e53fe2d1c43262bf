output "primary_endpoint" {
  description = "host:port of the primary (reads and writes, TLS)."
  value       = "${aws_elasticache_replication_group.this.primary_endpoint_address}:${local.port}"
}

output "reader_endpoint" {
  description = "host:port spreading reads over the replicas (TLS)."
  value       = "${aws_elasticache_replication_group.this.reader_endpoint_address}:${local.port}"
}

output "security_group_id" {
  description = "Security group of the replication group."
  value       = module.access.security_group_id
}
