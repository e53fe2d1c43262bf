locals {
  port = 6379
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

module "access" {
  source = "../port-access"

  name                       = "${var.name}-redis"
  description                = "Redis ${var.name}: ${local.port} from the allowed groups and CIDRs only"
  vpc_id                     = var.vpc_id
  port                       = local.port
  what                       = "Redis"
  allowed_security_group_ids = var.allowed_security_group_ids
  allowed_cidr_blocks        = var.allowed_cidr_blocks
  tags                       = var.tags
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: Redis encryption at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "Redis for ${var.name}"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = local.port
  parameter_group_name = "default.redis${split(".", var.engine_version)[0]}"

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = var.num_cache_clusters > 1
  multi_az_enabled           = var.num_cache_clusters > 1

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [module.access.security_group_id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this.arn
  # clients must speak TLS (go-redis: a tls.Config in the options)
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"

  snapshot_retention_limit   = var.snapshot_retention_limit
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:00-sun:06:00"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  tags = var.tags
}
