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

run "spark_engine_schedules_a_dataproc_serverless_batch" {
  command = plan

  variables {
    image_tag    = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
    batch_engine = "spark"
  }

  assert {
    condition = (
      endswith(google_cloud_scheduler_job.batch[0].http_target[0].uri, "/locations/${var.region}/batches")
      && google_cloud_scheduler_job.batch[0].retry_config[0].retry_count == 0
    )
    error_message = "the schedule does not create a Dataproc Serverless batch, or retries its creation (a second batch)"
  }

  assert {
    condition = (
      local.spark_batch_request.pysparkBatch.mainPythonFileUri == "file:///opt/app/score.py"
      && local.spark_batch_request.runtimeConfig.containerImage == "${local.image_repository}:${var.image_tag}-spark"
      && local.spark_batch_request.environmentConfig.executionConfig.kmsKey == google_kms_crypto_key.this.id
    )
    error_message = "the batch does not run score.py of the <tag>-spark image with the project's key"
  }

  assert {
    condition     = google_compute_subnetwork.spark[0].private_ip_google_access
    error_message = "the Spark subnet reaches Google APIs without Private Google Access (it has no other route)"
  }

  assert {
    condition = (
      strcontains(google_storage_bucket_iam_member.spark_writes_output[0].condition[0].expression, "/objects/batch/output/")
      && google_storage_bucket_iam_member.spark_writes_output[0].role == "roles/storage.objectUser"
      && strcontains(google_storage_bucket_iam_member.spark_reads_input[0].condition[0].expression, "/objects/${var.batch_input_path}")
    )
    error_message = "the Spark identity may write outside the output folder or read outside the input"
  }

  assert {
    condition     = toset(google_project_iam_custom_role.spark_submitter[0].permissions) == toset(["dataproc.batches.create", "dataproc.batches.get"])
    error_message = "the submitters hold more than creating and reading batches"
  }
}

run "container_engine_creates_no_spark_resources" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition = (
      length(google_service_account.spark) == 0 && length(google_compute_network.spark) == 0
      && endswith(google_cloud_scheduler_job.batch[0].http_target[0].uri, ":run")
    )
    error_message = "batch_engine = container plans Spark resources or does not run the Cloud Run job"
  }
}
