locals {
  # a JSON list if it is one, else comma-separated; blanks dropped
  services = sort(distinct(compact([
    for name in try(tolist(jsondecode(var.services)), split(",", var.services)) : trimspace(name)
  ])))
  environments = distinct(compact([
    for name in try(tolist(jsondecode(var.environments)), split(",", var.environments)) : trimspace(name)
  ]))

  image_repository = "${var.registry}/go-coffee"
}
