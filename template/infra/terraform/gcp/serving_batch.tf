# Serving mode `batch`: the serving image as a Cloud Run job that scores a file of the data bucket, run on a
# schedule by Cloud Scheduler (both created once image_tag is set). batch_engine = "spark": the schedule creates a
# Dataproc Serverless batch of `<package>.spark_batch` instead (spark_batch.tf); the Cloud Run job stays, the
# fallback of the runbook.

locals {
  batch_job_name = "${local.name}-batch"
  # The job writes its predictions and their validation report (<output>.validation.json) in this folder only.
  batch_output_folder = "${dirname(var.batch_output_path)}/"
}

resource "google_project_service" "batch" {
  for_each = toset(["run.googleapis.com", "cloudscheduler.googleapis.com"])

  project            = var.gcp_project_id
  service            = each.value
  disable_on_destroy = false
}

# CI deploys the job (and sets its invoker IAM) and its schedule.
resource "google_project_iam_member" "ci_deploys_cloud_run" {
  #checkov:skip=CKV_GCP_42:CI deploys this Cloud Run job and sets its invoker IAM, which needs roles/run.admin (run.developer cannot set IAM); it grants no project IAM and only this repository's allowed workflows can impersonate CI.
  project = var.gcp_project_id
  role    = "roles/run.admin"
  member  = google_service_account.ci.member
}

resource "google_project_iam_member" "ci_schedules_batch" {
  #checkov:skip=CKV_GCP_42:Creating and updating Cloud Scheduler jobs needs roles/cloudscheduler.admin (the only predefined role with cloudscheduler.jobs.create); it grants no IAM.
  project = var.gcp_project_id
  role    = "roles/cloudscheduler.admin"
  member  = google_service_account.ci.member
}

resource "google_kms_crypto_key_iam_member" "cloud_run_agent" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.cloud_run_agent

  depends_on = [google_project_service.batch]
}

# The job reads the data bucket and writes in the folder of batch_output_path only.
resource "google_storage_bucket_iam_member" "runtime_reads_data" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.runtime.member
}

resource "google_storage_bucket_iam_member" "runtime_writes_predictions" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime.member

  condition {
    title      = "batch-output-prefix-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/${local.batch_output_folder}\")"
  }
}

resource "google_cloud_run_v2_job" "batch" {
  count = local.serving_enabled ? 1 : 0

  name                = local.batch_job_name
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account       = google_service_account.runtime.email
      encryption_key        = google_kms_crypto_key.this.id
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"
      timeout               = var.batch_timeout
      max_retries           = 1

      containers {
        name    = "batch"
        image   = local.image
        command = ["python", "-m", "${var.package_name}.batch"]

        resources {
          limits = {
            cpu    = var.cpu
            memory = var.memory
          }
        }

        env {
          name  = "APP_ENV"
          value = var.environment
        }
        env {
          name  = "BATCH_INPUT_URI"
          value = "gs://${google_storage_bucket.this["data"].name}/${var.batch_input_path}"
        }
        env {
          name  = "BATCH_OUTPUT_URI"
          value = "gs://${google_storage_bucket.this["data"].name}/${var.batch_output_path}"
        }
      }
    }
  }

  depends_on = [
    google_kms_crypto_key_iam_member.cloud_run_agent,
    google_project_iam_member.runtime,
    google_storage_bucket_iam_member.runtime_reads_data,
    google_storage_bucket_iam_member.runtime_writes_predictions,
  ]
}

# Cloud Scheduler calls the Cloud Run Admin API with an OAuth token of this identity, which may run this job only.
resource "google_service_account" "scheduler" {
  account_id   = "${local.id_base}-sched"
  display_name = "${local.name} batch scheduler"
  description  = "Starts the ${local.batch_job_name} Cloud Run job (or its Dataproc Serverless batch) on schedule."
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_job" {
  count = local.serving_enabled ? 1 : 0

  name     = google_cloud_run_v2_job.batch[0].name
  location = google_cloud_run_v2_job.batch[0].location
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_service_account_iam_member" "ci_acts_as_scheduler" {
  service_account_id = google_service_account.scheduler.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.ci.member
}

resource "google_cloud_scheduler_job" "batch" {
  count = local.serving_enabled ? 1 : 0

  name             = local.batch_job_name
  region           = var.region
  description      = "Runs ${local.batch_job_name} on schedule."
  schedule         = var.batch_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "180s"

  # A retried batches.create would start a second batch (the request has no batch id, so each run gets a new one);
  # the Cloud Run job's :run is retried once.
  retry_config {
    retry_count = local.spark_enabled ? 0 : 1
  }

  # batch_engine = "container": run the Cloud Run job; "spark": create a Dataproc Serverless batch (spark_batch.tf).
  http_target {
    http_method = "POST"
    uri = (
      local.spark_enabled
      ? "https://dataproc.googleapis.com/v1/projects/${var.gcp_project_id}/locations/${var.region}/batches"
      : "https://run.googleapis.com/v2/projects/${var.gcp_project_id}/locations/${var.region}/jobs/${local.batch_job_name}:run"
    )
    body    = local.spark_enabled ? base64encode(jsonencode(local.spark_batch_request)) : null
    headers = local.spark_enabled ? { "Content-Type" = "application/json" } : null

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [
    google_cloud_run_v2_job_iam_member.scheduler_runs_job,
    google_project_iam_member.spark_submitters,
    google_service_account_iam_member.spark_submitters_act_as_spark,
  ]
}

output "service_url" {
  description = "Name of the Cloud Run batch job (empty until an image_tag is deployed)."
  value       = local.serving_enabled ? google_cloud_run_v2_job.batch[0].name : ""
}
