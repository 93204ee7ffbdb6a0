# One customer-managed key per environment encrypts the buckets, the image registry and the serving resources.
# Cloud KMS never deletes key rings or keys: destroying them in Terraform only removes key versions, making every
# object encrypted with them unreadable, hence prevent_destroy.

resource "google_kms_key_ring" "this" {
  name     = local.name
  location = var.region

  depends_on = [google_project_service.base]
}

resource "google_kms_crypto_key" "this" {
  name            = "${local.name}-data"
  key_ring        = google_kms_key_ring.this.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days

  lifecycle {
    prevent_destroy = true
  }
}

data "google_storage_project_service_account" "gcs" {
  project = var.gcp_project_id
}

# The Google-managed agents that read and write encrypted data on our behalf. Serving agents (Cloud Run, Vertex AI)
# are granted in the serving file of the chosen mode.
resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = {
    storage           = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
    artifact_registry = local.artifact_registry_agent
  }

  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value

  depends_on = [google_project_service.base]
}
