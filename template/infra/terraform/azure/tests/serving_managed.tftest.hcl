# serving = managed: the Azure ML workspace and online endpoint, planned against mocked azurerm and azapi providers
# with one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "azurerm" {
  source = "./tests/mocks"
}

# CD deploys by digest (production refuses a tag alone).
variables {
  image_digest = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

mock_provider "azapi" {}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag = ""
  }

  assert {
    condition     = length(azapi_resource.ml_endpoint) == 0 && length(azapi_resource.ml_deployment) == 0
    error_message = "the online endpoint or its deployment are planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition = (
      length(azapi_resource.ml_endpoint) == 1 && length(azapi_resource.ml_deployment) == 1
      && azapi_resource.ml_environment_version[0].name == "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
      && (var.environment != "production" || var.managed_instance_count >= 2)
    )
    error_message = "a deploy does not plan the endpoint, its deployment and the image's environment version (production: 2 instances)"
  }
}
