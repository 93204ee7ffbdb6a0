provider "google" {
  project = var.gcp_project_id
  region  = var.region

  # Bill API quota to this project: the Billing Budget API refuses user credentials without a quota project.
  user_project_override = true
  billing_project       = var.gcp_project_id

  # Labelled on every resource that supports labels (GCP label values: lowercase letters, digits, - and _).
  default_labels = local.labels
}
