# Logs of the serving workloads go to their own Cloud Logging bucket with the environment's retention and the
# project's key, and are excluded from the _Default bucket so they are ingested (and billed) once.

locals {
  workload_log_filter = join(" OR ", [
    "(resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.name}\")",
    "(resource.type=\"cloud_run_job\" AND resource.labels.job_name=\"${local.name}-batch\")",
    "(resource.type=\"aiplatform.googleapis.com/Endpoint\" AND resource.labels.endpoint_id=\"${local.vertex_endpoint_id}\")",
  ])
}

data "google_logging_project_cmek_settings" "this" {
  project = var.gcp_project_id

  depends_on = [google_project_service.base]
}

resource "google_kms_crypto_key_iam_member" "logging_agent" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_logging_project_cmek_settings.this.service_account_id}"
}

resource "google_logging_project_bucket_config" "workloads" {
  project        = var.gcp_project_id
  location       = var.region
  bucket_id      = local.name
  description    = "Logs of the ${var.project} serving workloads (${var.environment})."
  retention_days = var.log_retention_days

  cmek_settings {
    kms_key_name = google_kms_crypto_key.this.id
  }

  depends_on = [google_kms_crypto_key_iam_member.logging_agent]
}

resource "google_logging_project_sink" "workloads" {
  name                   = "${local.name}-workloads"
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.workloads.id}"
  filter                 = local.workload_log_filter
  unique_writer_identity = true
}

resource "google_logging_project_exclusion" "workloads_from_default" {
  name        = "${local.name}-workloads"
  description = "Stored in the ${local.name} log bucket instead (see the ${local.name}-workloads sink)."
  filter      = local.workload_log_filter
}
