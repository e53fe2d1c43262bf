# Production: no registry of its own. It pulls the very images staging built and
# tested from staging's ECR (ecr_registry_account_id: staging's account, or null when
# both environments share one account).
environment = "production"

single_nat_gateway       = false
rds_multi_az             = true
redis_num_cache_clusters = 3

node_groups = {
  application = {
    instance_types = ["t3.large", "t3.xlarge"]
    capacity_type  = "ON_DEMAND"
    min_size       = 3
    max_size       = 20
    desired_size   = 6
    labels         = { "node-type" = "application" }
  }
}

ecr_enabled             = false
ecr_registry_account_id = null
