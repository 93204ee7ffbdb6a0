# Outputs read by CI (see README.md) and by people. service_url is defined in serving_<mode>.tf.

output "data_bucket" {
  description = "Data bucket (DVC remote under dvc/, batch input/output, inference logs)."
  value       = google_storage_bucket.this["data"].name
}

output "model_bucket" {
  description = "Model bucket (published model artifacts)."
  value       = google_storage_bucket.this["models"].name
}

output "image_repository" {
  description = "Full path of the serving image without tag, in this environment's repository: push <image_repository>:<git sha> (GitHub variable IMAGE_REPOSITORY)."
  value       = local.own_image_repository
}

output "workload_identity_provider" {
  description = "Workload identity provider for google-github-actions/auth (GitHub variable GCP_WORKLOAD_IDENTITY_PROVIDER)."
  value       = google_iam_workload_identity_pool_provider.github.name
}

output "ci_service_account" {
  description = "Service account GitHub Actions impersonates to deploy and apply, from the GitHub environment of this stack (and main in staging), never from pull requests (GitHub variable GCP_CI_SERVICE_ACCOUNT)."
  value       = google_service_account.ci.email
}

output "ci_plan_service_account" {
  description = "Read-only service account that pull requests impersonate for terraform plan (GitHub variable GCP_CI_PLAN_SERVICE_ACCOUNT); empty when github_oidc_subjects does not list pull_request."
  value       = local.pull_request_planning ? google_service_account.ci_plan[0].email : ""
}

output "runtime_service_account" {
  description = "Service account the serving workload runs as."
  value       = google_service_account.runtime.email
}

output "cloud_region" {
  description = "Region of every resource (GitHub variable CLOUD_REGION)."
  value       = var.region
}

output "image_tag" {
  description = "Image tag deployed now (empty before the first deploy): `make deployed-image-tag`, the rollback target."
  value       = var.image_tag
}

output "image_digest" {
  description = "Image digest deployed by the last apply (empty when deployed by tag): the rollback target in production."
  value       = var.image_digest
}
