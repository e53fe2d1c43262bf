# Go Coffee on AWS: VPC, EKS, RDS PostgreSQL, ElastiCache Redis, MSK Kafka and ECR,
# from terraform/modules. envs/staging and envs/production hold the same files except
# terraform.tfvars, so what staging proves is what production gets.

data "aws_caller_identity" "current" {}

locals {
  name = "${var.project_name}-${var.environment}"

  tags = {
    Project     = var.project_name
    Environment = var.environment
    ManagedBy   = "terraform"
    Owner       = var.owner
  }

  # Without repositories of its own, the environment pulls from another registry.
  registry_account  = coalesce(var.ecr_registry_account_id, data.aws_caller_identity.current.account_id)
  external_registry = "${local.registry_account}.dkr.ecr.${var.aws_region}.amazonaws.com"

  registry = var.ecr_enabled ? module.ecr[0].registry : local.external_registry
  image_repositories = var.ecr_enabled ? module.ecr[0].repository_urls : {
    for service in var.ecr_services : service => "${local.external_registry}/${var.ecr_repository_prefix}/${service}"
  }
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  enable_nat_gateway = true
  single_nat_gateway = var.single_nat_gateway
  cluster_name       = local.name

  flow_logs_retention_days = var.flow_logs_retention_days
  tags                     = local.tags
}

module "eks" {
  source = "../../modules/eks"

  cluster_name           = local.name
  kubernetes_version     = var.kubernetes_version
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.eks_endpoint_public_access
  public_access_cidrs    = var.eks_public_access_cidrs
  node_groups            = var.node_groups
  tags                   = local.tags
}

# The data stores admit the cluster's security group only: EKS puts the managed
# nodes, and so the pods, in it.
module "rds" {
  source = "../../modules/rds"

  identifier                 = local.name
  instance_class             = var.rds_instance_class
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  multi_az                   = var.rds_multi_az
  deletion_protection        = var.rds_deletion_protection
  tags                       = local.tags
}

module "redis" {
  source = "../../modules/elasticache"

  name                       = local.name
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_num_cache_clusters
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  tags                       = local.tags
}

module "kafka" {
  source = "../../modules/msk"

  cluster_name               = local.name
  broker_instance_type       = var.kafka_instance_type
  number_of_broker_nodes     = var.kafka_broker_nodes
  client_authentication      = var.kafka_client_authentication
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  tags                       = local.tags
}

module "ecr" {
  source = "../../modules/ecr"
  count  = var.ecr_enabled ? 1 : 0

  repository_prefix = var.ecr_repository_prefix
  services          = toset(var.ecr_services)
  pull_account_ids  = var.ecr_pull_account_ids
  tags              = local.tags
}
