# Serving mode `container`: the FastAPI image on Cloud Run (created once image_tag is set).
#
# Every deploy (`make deploy IMAGE_TAG=<sha>`) creates a new revision and sends it all traffic once its startup
# probe (/ready: the model is loaded) passes; a revision that never becomes ready never receives traffic. Roll back
# by deploying the previous tag. Callers need roles/run.invoker (invoker_members) unless allow_unauthenticated.

# Inference logs (JSON lines for drift detection) are written through a Cloud Storage volume (local.inference_log_prefix):
# the container's own filesystem is in memory and lost with the instance. Cloud Run keeps the volume rather than the
# log shipper: the platform uploads each file as it is closed (every INFERENCE_LOG_ROTATE_SECONDS) with the service's
# own identity, and no upload code runs beside the requests.

resource "google_project_service" "run" {
  project            = var.gcp_project_id
  service            = "run.googleapis.com"
  disable_on_destroy = false
}

# CI deploys revisions and manages the service's invoker bindings.
resource "google_project_iam_member" "ci_deploys_cloud_run" {
  #checkov:skip=CKV_GCP_42:CI deploys this Cloud Run service and sets its invoker IAM, which needs roles/run.admin (run.developer cannot set IAM); it grants no project IAM and only this repository's allowed workflows can impersonate CI.
  project = var.gcp_project_id
  role    = "roles/run.admin"
  member  = google_service_account.ci.member
}

resource "google_kms_crypto_key_iam_member" "cloud_run_agent" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.cloud_run_agent

  depends_on = [google_project_service.run]
}

# The service may write inference logs under its prefix only (and list the bucket, which the volume mount needs).
resource "google_storage_bucket_iam_member" "runtime_writes_inference_log" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime.member

  condition {
    title      = "inference-log-prefix-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/${local.inference_log_prefix}\")"
  }
}

resource "google_storage_bucket_iam_member" "runtime_lists_data" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.legacyBucketReader"
  member = google_service_account.runtime.member
}

resource "google_cloud_run_v2_service" "api" {
  count = local.serving_enabled ? 1 : 0

  name                = local.name
  location            = var.region
  description         = "${var.project} prediction API (${var.environment})"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.runtime.email
    encryption_key                   = google_kms_crypto_key.this.id
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    max_instance_request_concurrency = var.concurrency
    timeout                          = "30s"

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      name  = "api"
      image = local.image

      # Cloud Run sets PORT from this value (8000, the port the image listens on).
      ports {
        container_port = 8000
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = true # CPU is billed only while a request is being served
        startup_cpu_boost = true
      }

      env {
        name  = "APP_ENV"
        value = var.environment
      }
      env {
        name  = "LOG_LEVEL"
        value = "info"
      }
      # Cloud Run checks every request's identity token against roles/run.invoker before it reaches the container
      # (unless allow_unauthenticated, the explicit public choice), so the service does not check again.
      env {
        name  = "AUTH_MODE"
        value = var.allow_unauthenticated ? "none" : "gateway"
      }
      env {
        name  = "INFERENCE_LOG_DIR"
        value = "/mnt/data/${local.inference_log_prefix}"
      }
      dynamic "env" {
        for_each = local.feature_store_environment
        content {
          name  = env.key
          value = env.value
        }
      }

      # Traffic is routed to an instance only once the model is loaded.
      startup_probe {
        http_get {
          path = "/ready"
          port = 8000
        }
        period_seconds    = 5
        timeout_seconds   = 3
        failure_threshold = 24
      }

      liveness_probe {
        http_get {
          path = "/health"
          port = 8000
        }
        period_seconds    = 30
        timeout_seconds   = 3
        failure_threshold = 3
      }

      volume_mounts {
        name       = "data"
        mount_path = "/mnt/data"
      }
    }

    volumes {
      name = "data"
      gcs {
        bucket    = google_storage_bucket.this["data"].name
        read_only = false
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  depends_on = [
    google_kms_crypto_key_iam_member.cloud_run_agent,
    google_project_iam_member.runtime,
    google_storage_bucket_iam_member.runtime_writes_inference_log,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = local.serving_enabled ? toset(concat(var.invoker_members, var.allow_unauthenticated ? ["allUsers"] : [])) : toset([])

  name     = google_cloud_run_v2_service.api[0].name
  location = google_cloud_run_v2_service.api[0].location
  role     = "roles/run.invoker"
  member   = each.value
}

# The CD smoke test (`make smoke`) calls the private service as the CI identity, with an identity token for its URL.
resource "google_cloud_run_v2_service_iam_member" "ci_invokes" {
  count = local.serving_enabled ? 1 : 0

  name     = google_cloud_run_v2_service.api[0].name
  location = google_cloud_run_v2_service.api[0].location
  role     = "roles/run.invoker"
  member   = google_service_account.ci.member
}

output "service_url" {
  description = "HTTPS URL of the Cloud Run service (empty until an image_tag is deployed)."
  value       = local.serving_enabled ? google_cloud_run_v2_service.api[0].uri : ""
}
