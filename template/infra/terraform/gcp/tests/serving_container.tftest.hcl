# serving = container: the Cloud Run service, planned against a mocked Google provider with one environment's values
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
    condition     = length(google_cloud_run_v2_service.api) == 0
    error_message = "the Cloud Run service is planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  # Autoscaling bounds: what envs/<environment>.tfvars asks for, and production keeps a warm instance.
  assert {
    condition = alltrue([
      for template in google_cloud_run_v2_service.api[0].template : alltrue([
        for scaling in template.scaling :
        scaling.min_instance_count == var.min_instances && scaling.max_instance_count == var.max_instances
        && var.min_instances <= var.max_instances && var.max_instances >= 1
      ])
    ]) && (var.environment != "production" || var.min_instances >= 1)
    error_message = "Cloud Run scaling is not 0 <= min <= max (production: min >= 1) from envs/<environment>.tfvars"
  }

  assert {
    condition     = google_cloud_run_v2_service.api[0].deletion_protection == var.deletion_protection
    error_message = "the service's deletion protection does not follow the environment"
  }

  assert {
    condition = alltrue([
      for template in google_cloud_run_v2_service.api[0].template : alltrue([
        for container in template.containers : container.image == "${local.image_repository}@${var.image_digest}"
        && alltrue([for port in container.ports : port.container_port == 8000])
      ])
    ])
    error_message = "the service does not run the deployed image tag on port 8000"
  }
}
