# The previous envs/local: the built-in terraform_data resource only, so the tests
# of the activity mechanics (plan hash, apply markers, stale plans, the local
# backend's lock) run offline and fast. envs/local itself (AWS provider against
# moto) is tested in tests/activities/test_terraform_moto.py.

# One record per environment: its name, its entry point and the services routed there.
# The release version is deliberately NOT part of it, so a new release updates only
# terraform_data.release below.
resource "terraform_data" "environment" {
  for_each = toset(local.environments)

  input = {
    name       = each.key
    entrypoint = lookup(var.entrypoints, each.key, "")
    services   = local.services
  }
}

# The release itself. A version change is an in-place update of `input` (never a
# replace: no triggers_replace here), so a normal release plans 0 to destroy.
resource "terraform_data" "release" {
  input = {
    version          = var.release_version
    services         = local.services
    environments     = local.environments
    image_repository = local.image_repository
  }
}
