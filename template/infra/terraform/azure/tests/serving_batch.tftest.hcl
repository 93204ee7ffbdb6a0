# serving = batch: the scheduled Container Apps job, planned against a mocked azurerm provider with one environment's
# values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

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
    condition     = length(azurerm_container_app_job.batch) == 0
    error_message = "the batch job is planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition = (
      length(azurerm_container_app_job.batch) == 1 && azurerm_container_app_job.batch[0].tags == local.tags
      && alltrue([for trigger in azurerm_container_app_job.batch[0].schedule_trigger_config : trigger.cron_expression == var.batch_schedule && trigger.parallelism == 1])
    )
    error_message = "a deploy does not plan one tagged job on envs/<environment>.tfvars' schedule"
  }
}
