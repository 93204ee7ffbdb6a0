# serving = managed: the Vertex AI endpoint, planned against a mocked Google provider with one environment's values
# (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "google" {
  source = "./tests/mocks"
}

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
    condition     = length(google_vertex_ai_endpoint.model) == 0
    error_message = "the Vertex AI endpoint is planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition = (
      length(google_vertex_ai_endpoint.model) == 1 && google_vertex_ai_endpoint.model[0].display_name == "${var.project}-${var.environment}"
      && can(regex("^[0-9]{1,10}$", google_vertex_ai_endpoint.model[0].name))
      && length(google_vertex_ai_endpoint.model[0].encryption_spec) == 1
    )
    error_message = "a deploy does not plan a CMEK-encrypted endpoint with a numeric ID for this environment"
  }
}
