# orchestrator = airflow: Cloud Composer 3 runs the DAG of orchestration/airflow/ and starts each stage as an
# execution of one Cloud Run job of the pipeline image (`python orchestration/pipeline.py run <stage>`), so training
# runs on the job's CPU and memory (pipeline_cpu / pipeline_memory), not on the CI runner.
#
#   Composer 3         Airflow 3 (var.composer_image_version), private; the DAG's Airflow Variables are its
#                      environment variables (AIRFLOW_VAR_*), set here: one place
#   airflow identity   Composer's service account: composer.worker, and run (with overrides) of the pipeline job only
#   pipeline job       the Cloud Run job the Retrain workflow points at each new pipeline image (by digest); its
#                      identity reads and writes the run store (gs://<data bucket>/pipeline/) and nothing else
#
# The environment and the job wait for var.pipeline_image, as serving waits for an image tag.

variable "composer_image_version" {
  description = "Cloud Composer 3 image with Airflow 3 (composer-3-airflow-<version>[-build.<n>]); the DAG uses airflow.sdk."
  type        = string
  default     = "composer-3-airflow-3.1.0"

  validation {
    condition     = can(regex("^composer-3-airflow-3\\.", var.composer_image_version))
    error_message = "composer_image_version must be a Cloud Composer 3 image of Airflow 3 (composer-3-airflow-3.x.y)."
  }
}

variable "composer_environment_size" {
  description = "Composer 3 environment size: the scheduler and workers only start jobs; the stages run on Cloud Run."
  type        = string
  default     = "ENVIRONMENT_SIZE_SMALL"
}

variable "pipeline_image" {
  description = "The pipeline image by digest (<repository>@sha256:..., built by the Retrain workflow from Dockerfile.pipeline); empty until the first build."
  type        = string
  default     = ""

  validation {
    condition     = var.pipeline_image == "" || can(regex("^[^@]+@sha256:[a-f0-9]{64}$", var.pipeline_image))
    error_message = "pipeline_image must be pinned by digest: <repository>@sha256:<64 hex digits>."
  }
}

variable "pipeline_cpu" {
  description = "CPU limit of a pipeline stage (Cloud Run job task): the compute training runs on."
  type        = string
  default     = "2"
}

variable "pipeline_memory" {
  description = "Memory limit of a pipeline stage (Cloud Run job task)."
  type        = string
  default     = "8Gi"
}

variable "pipeline_timeout" {
  description = "Longest run of one stage execution (Airflow's own stage timeout, params.yaml, applies as well)."
  type        = string
  default     = "3600s"
}

variable "pipeline_tracking_uri" {
  description = "MLFLOW_TRACKING_URI of the stage executions (the MLflow server the pipeline tracks to)."
  type        = string
  default     = ""
}

locals {
  pipeline_enabled  = var.pipeline_image != ""
  pipeline_job_name = "${local.name}-pipeline"
  pipeline_prefix   = "pipeline/"
  pipeline_store    = "gs://${google_storage_bucket.this["data"].name}/pipeline"
  # The DAG's Airflow Variables (training_pipeline.py reads them as var.value.*).
  airflow_variables = {
    pipeline_store = local.pipeline_store
    gcp_project    = var.gcp_project_id
    pipeline_job   = local.pipeline_job_name
  }
}

resource "google_project_service" "airflow" {
  for_each = toset(["composer.googleapis.com", "run.googleapis.com"])

  project            = var.gcp_project_id
  service            = each.value
  disable_on_destroy = false
}

# Identities

resource "google_service_account" "airflow" {
  account_id   = "${local.id_base}-airflow"
  display_name = "${local.name} Airflow (Composer)"
  description  = "Cloud Composer environment of ${local.name}: runs the pipeline job's executions."
}

resource "google_project_iam_member" "airflow_worker" {
  #checkov:skip=CKV_GCP_49:Composer requires roles/composer.worker on its environment's own service account at project level; this account runs nothing but Composer's workers and the pipeline job.
  project = var.gcp_project_id
  role    = "roles/composer.worker"
  member  = google_service_account.airflow.member
}

resource "google_service_account" "pipeline" {
  account_id   = "${local.id_base}-pipeline"
  display_name = "${local.name} pipeline stages"
  description  = "Identity of the pipeline's stage executions: the run store under pipeline/ of the data bucket."
}

resource "google_storage_bucket_iam_member" "pipeline_run_store" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectUser"
  member = google_service_account.pipeline.member

  condition {
    title      = "pipeline-prefix-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/${local.pipeline_prefix}\") || resource.name == \"projects/_/buckets/${google_storage_bucket.this["data"].name}\""
  }
}

resource "google_kms_crypto_key_iam_member" "pipeline_cloud_run_agent" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.cloud_run_agent

  depends_on = [google_project_service.airflow]
}

# The pipeline's Cloud Run job

resource "google_cloud_run_v2_job" "pipeline" {
  count = local.pipeline_enabled ? 1 : 0

  name                = local.pipeline_job_name
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account       = google_service_account.pipeline.email
      encryption_key        = google_kms_crypto_key.this.id
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"
      timeout               = var.pipeline_timeout
      max_retries           = 0 # Airflow retries a stage (params.yaml orchestration.retries)

      containers {
        name = "pipeline"
        # The DAG gives the arguments of each execution: orchestration/pipeline.py run <stage> ...
        image   = var.pipeline_image
        command = ["python"]
        args    = ["orchestration/pipeline.py", "describe"]

        resources {
          limits = {
            cpu    = var.pipeline_cpu
            memory = var.pipeline_memory
          }
        }

        env {
          name  = "APP_ENV"
          value = var.environment
        }
        env {
          name  = "PIPELINE_STORE"
          value = local.pipeline_store
        }
        env {
          name  = "MLFLOW_TRACKING_URI"
          value = var.pipeline_tracking_uri
        }
      }
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.pipeline_cloud_run_agent, google_storage_bucket_iam_member.pipeline_run_store]
}

# Composer may start executions of this job (with the stage's arguments) and follow them, nothing else on Cloud Run.
resource "google_cloud_run_v2_job_iam_member" "airflow_runs_pipeline" {
  count = local.pipeline_enabled ? 1 : 0

  name     = google_cloud_run_v2_job.pipeline[0].name
  location = google_cloud_run_v2_job.pipeline[0].location
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = google_service_account.airflow.member
}

# The environment

resource "google_composer_environment" "main" {
  count = local.pipeline_enabled ? 1 : 0

  name   = "${local.name}-airflow"
  region = var.region
  labels = local.labels

  config {
    environment_size           = var.composer_environment_size
    enable_private_environment = true

    software_config {
      image_version = var.composer_image_version
      env_variables = { for name, value in local.airflow_variables : "AIRFLOW_VAR_${upper(name)}" => value }
      airflow_config_overrides = {
        "core-load_examples" = "False"
      }
    }

    node_config {
      service_account = google_service_account.airflow.email
    }
  }

  depends_on = [google_project_service.airflow, google_project_iam_member.airflow_worker]
}

# CI (the Retrain workflow) points the job at the new pipeline image and starts runs through the Airflow API.

resource "google_cloud_run_v2_job_iam_member" "ci_updates_pipeline" {
  count = local.pipeline_enabled ? 1 : 0

  name     = google_cloud_run_v2_job.pipeline[0].name
  location = google_cloud_run_v2_job.pipeline[0].location
  role     = "roles/run.developer"
  member   = google_service_account.ci.member
}

resource "google_service_account_iam_member" "ci_acts_as_pipeline" {
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.ci.member
}

# Composer 3 maps this role to Airflow's User role: trigger and read DAG runs.
resource "google_project_iam_member" "ci_triggers_airflow" {
  project = var.gcp_project_id
  role    = "roles/composer.user"
  member  = google_service_account.ci.member
}

output "airflow_environment" {
  description = "Name of the Composer environment (empty before the first pipeline image)."
  value       = local.pipeline_enabled ? google_composer_environment.main[0].name : ""
}

output "airflow_uri" {
  description = "The Airflow web server and REST API of the environment (the Retrain workflow's AIRFLOW_API_URL)."
  value       = local.pipeline_enabled ? google_composer_environment.main[0].config[0].airflow_uri : ""
}

output "airflow_variables" {
  description = "The Airflow Variables the environment sets for the DAG (their values come from this stack)."
  value       = sort(keys(local.airflow_variables))
}

output "pipeline_job" {
  description = "The pipeline's Cloud Run job: the Retrain workflow points it at each new pipeline image."
  value       = local.pipeline_job_name
}

output "pipeline_store" {
  description = "The pipeline's run store (orchestration/pipeline.py run --store)."
  value       = local.pipeline_store
}
