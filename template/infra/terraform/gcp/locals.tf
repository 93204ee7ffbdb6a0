locals {
  # The sampled inference log lands under this prefix of the data bucket; the drift check reads it.
  inference_log_prefix = "inference/"
  inference_log_uri    = "gs://${google_storage_bucket.this["data"].name}/${local.inference_log_prefix}"
  # <project>-<environment>: the base of every resource name.
  name = "${var.project}-${var.environment}"
  # feature_store = feast: where the served container finds the feature store (feature_store.tf)
  feature_store_environment = var.feature_store ? {
    FEATURE_STORE_YAML     = "feature_repo/feature_store.cloud.yaml"
    FEATURE_STORE_URI      = "gs://${google_storage_bucket.this["data"].name}/feature_store"
    FEATURE_STORE_DATABASE = "${var.project}-${var.environment}-features"
    GOOGLE_CLOUD_PROJECT   = var.gcp_project_id
  } : {}

  # Short environment code for IDs with tight length limits (service accounts: 30, workload identity pools: 32).
  env_code = { staging = "stg", production = "prd" }[var.environment]
  id_base  = "${trimsuffix(substr(var.project, 0, 20), "-")}-${local.env_code}"

  labels = {
    project     = var.project
    environment = var.environment
    owner       = var.owner
    cost_center = var.cost_center
    managed_by  = "terraform"
  }

  serving_enabled = var.image_tag != ""

  own_image_repository = "${var.region}-docker.pkg.dev/${var.gcp_project_id}/${google_artifact_registry_repository.images.repository_id}/${var.image_name}"
  image_repository     = var.image_repository != "" ? var.image_repository : local.own_image_repository
  image                = var.image_digest != "" ? "${local.image_repository}@${var.image_digest}" : "${local.image_repository}:${var.image_tag}"

  project_number = data.google_project.this.number
  # Google-managed service agents that encrypt with the project's key (they exist once their API is enabled).
  artifact_registry_agent = "serviceAccount:service-${local.project_number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
  cloud_run_agent         = "serviceAccount:service-${local.project_number}@serverless-robot-prod.iam.gserviceaccount.com"
  vertex_ai_agent         = "serviceAccount:service-${local.project_number}@gcp-sa-aiplatform.iam.gserviceaccount.com"

  # Vertex AI endpoint IDs are numeric (at most 10 digits): derive a stable one from the resource name.
  vertex_endpoint_id = tostring(parseint(substr(sha256(local.name), 0, 8), 16))

  runbook_base_url = "https://github.com/${var.github_repository}/blob/main/docs/runbooks"
}

data "google_project" "this" {
  project_id = var.gcp_project_id
}
