# Staging: builds the images (ECR lives here) and runs smaller than production.
environment = "staging"

single_nat_gateway       = true
rds_multi_az             = false
redis_num_cache_clusters = 2

ecr_enabled = true
# production's account, when it is another one than staging's:
# ecr_pull_account_ids = ["210987654321"]
