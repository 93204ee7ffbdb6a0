# serving = batch: the Cloud Run job and its Cloud Scheduler trigger, planned against a mocked Google provider with
# one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

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
    condition     = length(google_cloud_run_v2_job.batch) == 0 && length(google_cloud_scheduler_job.batch) == 0
    error_message = "the batch job or its schedule are planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition = (
      length(google_cloud_run_v2_job.batch) == 1 && google_cloud_scheduler_job.batch[0].schedule == var.batch_schedule
      && google_cloud_run_v2_job.batch[0].deletion_protection == var.deletion_protection
    )
    error_message = "a deploy does not plan the job on envs/<environment>.tfvars' schedule with its deletion protection"
  }
}
