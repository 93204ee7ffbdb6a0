# feature_store = feast: the online store of /predict by id, and who may read and write it.
#
# Firestore in Datastore mode (Feast's datastore online store) rather than Memorystore for Redis: Cloud Run reaches
# it through Google's API with the service's own identity, so there is no VPC, connector, AUTH string or TLS
# certificate to manage, access is IAM (read for the service, write for CI's materialisation, each limited by an
# IAM condition to this one database), it is encrypted with the project's key (CMEK) and costs nothing while
# idle. One database per environment; Feast keeps one kind per feature view in it.
#
# The registry and the offline source (a Parquet file) are objects under feature_store/ of the data bucket.

locals {
  feature_store_database = "${local.name}-features"
  feature_store_uri      = "gs://${google_storage_bucket.this["data"].name}/feature_store"
  firestore_agent        = "serviceAccount:service-${local.project_number}@gcp-sa-firestore.iam.gserviceaccount.com"
  # IAM conditions: the role holds on this database only
  feature_store_condition = "resource.name.startsWith(\"projects/${var.gcp_project_id}/databases/${local.feature_store_database}\")"
}

resource "google_project_service" "firestore" {
  project            = var.gcp_project_id
  service            = "firestore.googleapis.com"
  disable_on_destroy = false
}

resource "google_kms_crypto_key_iam_member" "firestore_agent" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.firestore_agent

  depends_on = [google_project_service.firestore]
}

resource "google_firestore_database" "features" {
  project                           = var.gcp_project_id
  name                              = local.feature_store_database
  location_id                       = var.region
  type                              = "DATASTORE_MODE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.environment == "production" ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.environment == "production" ? "ABANDON" : "DELETE"

  cmek_config {
    kms_key_name = google_kms_crypto_key.this.id
  }

  depends_on = [google_kms_crypto_key_iam_member.firestore_agent]
}

# The service reads entities (datastore.viewer), CI's pipeline writes them (datastore.user): this database only.
resource "google_project_iam_member" "feature_store" {
  for_each = {
    runtime = { role = "roles/datastore.viewer", member = google_service_account.runtime.member }
    ci      = { role = "roles/datastore.user", member = google_service_account.ci.member }
  }

  project = var.gcp_project_id
  role    = each.value.role
  member  = each.value.member

  condition {
    title      = "${local.feature_store_database} only"
    expression = local.feature_store_condition
  }
}

# The service reads the registry; CI's objects role on the data bucket (identity.tf) already writes feature_store/.
resource "google_storage_bucket_iam_member" "runtime_reads_feature_registry" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.runtime.member

  condition {
    title      = "feature registry only"
    expression = "resource.name == \"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/feature_store/registry.db\""
  }
}

output "feature_store_uri" {
  description = "FEATURE_STORE_URI of CI's pipeline: the registry and the offline source of the feature store."
  value       = local.feature_store_uri
}

output "feature_store_database" {
  description = "FEATURE_STORE_DATABASE: the Firestore (Datastore mode) database of the online store."
  value       = google_firestore_database.features.name
}
