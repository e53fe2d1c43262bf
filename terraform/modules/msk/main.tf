locals {
  # the TLS listener of the chosen client authentication
  port = var.client_authentication == "sasl_iam" ? 9098 : 9094
}

module "access" {
  source = "../port-access"

  name                       = "${var.cluster_name}-kafka"
  description                = "MSK ${var.cluster_name}: TLS port ${local.port} from the allowed groups and CIDRs only"
  vpc_id                     = var.vpc_id
  port                       = local.port
  what                       = "Kafka TLS"
  allowed_security_group_ids = var.allowed_security_group_ids
  allowed_cidr_blocks        = var.allowed_cidr_blocks
  tags                       = var.tags
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
    security_groups = [module.access.security_group_id]

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
