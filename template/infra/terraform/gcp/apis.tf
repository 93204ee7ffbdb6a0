# APIs every serving mode needs. Serving-specific APIs (Cloud Run, Vertex AI, Cloud Scheduler) are enabled in the
# serving_*.tf file of the chosen mode. Disabling an API on destroy would break anything else in the project that
# uses it, so destroy leaves them enabled.
locals {
  base_apis = [
    "artifactregistry.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "containerscanning.googleapis.com", # vulnerability scanning of every image pushed to Artifact Registry
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ]
}

resource "google_project_service" "base" {
  for_each = toset(local.base_apis)

  project            = var.gcp_project_id
  service            = each.value
  disable_on_destroy = false
}
