# serving = container: the Container App, planned against a mocked azurerm provider with one environment's values
# (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "azurerm" {
  source = "./tests/mocks"
}

# azapi is required by the module (versions.tf); nothing of this mode uses it.
mock_provider "azapi" {}

# CD deploys by digest (production refuses a tag alone).
variables {
  image_digest = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag = ""
  }

  assert {
    condition     = length(azurerm_container_app.service) == 0
    error_message = "the Container App is planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  # Autoscaling bounds: what envs/<environment>.tfvars asks for, and production keeps two warm replicas.
  assert {
    condition = alltrue([
      for template in azurerm_container_app.service[0].template :
      template.min_replicas == var.min_replicas && template.max_replicas == var.max_replicas
      && var.min_replicas <= var.max_replicas && var.max_replicas >= 1
    ]) && (var.environment != "production" || var.min_replicas >= 2)
    error_message = "replica bounds are not 0 <= min <= max (production: min >= 2) from envs/<environment>.tfvars"
  }

  assert {
    condition     = azurerm_container_app.service[0].tags == local.tags
    error_message = "the Container App is not tagged with local.tags"
  }
}
