locals {
  # the TLS listener of the chosen client authentication
  port = var.client_authentication == "sasl_iam" ? 9098 : 9094
}

resource "aws_security_group" "this" {
  name        = "${var.cluster_name}-kafka"
  description = "MSK ${var.cluster_name}: TLS port ${local.port} from the allowed groups and CIDRs only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.cluster_name}-kafka" })
}

resource "aws_vpc_security_group_ingress_rule" "from_groups" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Kafka TLS from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = each.key
}

resource "aws_vpc_security_group_ingress_rule" "from_cidrs" {
  for_each = toset(var.allowed_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "Kafka TLS from ${each.key}"
  ip_protocol       = "tcp"
  from_port         = local.port
  to_port           = local.port
  cidr_ipv4         = each.key
}

resource "aws_kms_key" "this" {
  description             = "${var.cluster_name}: Kafka encryption at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_cloudwatch_log_group" "broker" {
  name              = "/aws/msk/${var.cluster_name}/broker"
  retention_in_days = 30
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.cluster_name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.number_of_broker_nodes

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size
      }
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.this.arn
    encryption_in_transit {
      client_broker = "TLS" # no plaintext listener at all
      in_cluster    = true
    }
  }

  client_authentication {
    unauthenticated = var.client_authentication == "tls"
    sasl {
      iam = var.client_authentication == "sasl_iam"
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.broker.name
      }
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.number_of_broker_nodes % length(var.subnet_ids) == 0
      error_message = "number_of_broker_nodes (${var.number_of_broker_nodes}) must be a multiple of the number of subnets (${length(var.subnet_ids)})."
    }
  }
}
