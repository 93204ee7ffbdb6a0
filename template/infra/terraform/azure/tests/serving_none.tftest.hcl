# serving = none: storage, registry and identities only, planned against a mocked azurerm provider with one
# environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "azurerm" {
  source = "./tests/mocks"
}

# azapi is required by the module (versions.tf); nothing of this mode uses it.
mock_provider "azapi" {}

# CD deploys by digest (production refuses a tag alone).
variables {
  image_digest = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

run "an_image_tag_deploys_nothing" {
  command = plan

  variables {
    image_tag = "0123456789abcdef"
  }

  assert {
    condition     = output.service_url == "" && output.image_tag == "0123456789abcdef"
    error_message = "serving none must never expose a service, whatever image tag is given"
  }
}
