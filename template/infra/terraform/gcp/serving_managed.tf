# Serving mode `managed`: a Vertex AI online endpoint (created once image_tag is set), encrypted with the project key.
#
# Terraform owns the endpoint only. Uploading a model version (the serving image as a custom container) and
# deploying it to the endpoint with a traffic split is done by `make deploy` (target vertex-deploy, after this apply)
# with `gcloud ai models upload` and `gcloud ai endpoints deploy-model` (see README.md): the Google provider has no resource that deploys a model to an
# endpoint and shifts traffic between versions, so doing it in Terraform would replace the endpoint on every deploy.

resource "google_project_service" "aiplatform" {
  project            = var.gcp_project_id
  service            = "aiplatform.googleapis.com"
  disable_on_destroy = false
}

# CI creates the endpoint, uploads model versions and deploys them (running as the runtime service account).
resource "google_project_iam_member" "ci_deploys_vertex_ai" {
  project = var.gcp_project_id
  role    = "roles/aiplatform.user"
  member  = google_service_account.ci.member
}

resource "google_kms_crypto_key_iam_member" "vertex_ai_agent" {
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.vertex_ai_agent

  depends_on = [google_project_service.aiplatform]
}

resource "google_vertex_ai_endpoint" "model" {
  #checkov:skip=CKV2_GCP_33:A private endpoint needs a VPC peered through Private Services Access, which this project does not own; the public endpoint still requires IAM (aiplatform.endpoints.predict) on every call.
  count = local.serving_enabled ? 1 : 0

  name         = local.vertex_endpoint_id
  display_name = local.name
  description  = "${var.project} online predictions (${var.environment})"
  location     = var.region

  encryption_spec {
    kms_key_name = google_kms_crypto_key.this.id
  }

  depends_on = [google_kms_crypto_key_iam_member.vertex_ai_agent]
}

output "service_url" {
  description = "Resource name of the Vertex AI endpoint (empty until an image_tag is deployed)."
  value       = local.serving_enabled ? google_vertex_ai_endpoint.model[0].id : ""
}

output "image" {
  description = "Image of image_tag that `make vertex-deploy` uploads as the endpoint's model (empty until an image_tag is deployed)."
  value       = local.serving_enabled ? local.image : ""
}

# serving/log_shipper.py uploads the closed inference log files with the runtime service account: it may create
# objects under the inference log prefix only (no read, no delete, nothing else in the bucket).
resource "google_storage_bucket_iam_member" "runtime_writes_inference_log" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectCreator"
  member = google_service_account.runtime.member

  condition {
    title      = "inference-log-prefix-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/${local.inference_log_prefix}\")"
  }
}

output "inference_log_uri" {
  description = "INFERENCE_LOG_URI that `make vertex-deploy` gives the model's container: its log shipper uploads there."
  value       = local.inference_log_uri
}
