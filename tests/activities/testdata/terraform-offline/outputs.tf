output "registry" {
  description = "host:port of the image registry."
  value       = var.registry
}

output "image_repository" {
  description = "Repository prefix of the service images (<registry>/go-coffee)."
  value       = local.image_repository
}

output "release_version" {
  description = "Version recorded by the last apply."
  value       = terraform_data.release.output.version
}

output "environments" {
  description = "Environment name -> entry point URL."
  value       = { for name, env in terraform_data.environment : name => env.output.entrypoint }
}
