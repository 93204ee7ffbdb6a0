# Identities. No service account keys exist anywhere: GitHub Actions exchanges its OIDC token for short-lived
# credentials through Workload Identity Federation, and the workloads run as their own service account.

# --- Runtime: the identity of the serving container, the batch job or the Vertex AI deployment -----------------

resource "google_service_account" "runtime" {
  account_id   = "${local.id_base}-run"
  display_name = "${local.name} runtime"
  description  = "Runs the ${var.project} model in ${var.environment}: reads the model bucket, writes logs and metrics."

  depends_on = [google_project_service.base]
}

resource "google_project_iam_member" "runtime" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])

  project = var.gcp_project_id
  role    = each.value
  member  = google_service_account.runtime.member
}

resource "google_storage_bucket_iam_member" "runtime_reads_models" {
  bucket = google_storage_bucket.this["models"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.runtime.member
}

# --- GitHub Actions: Workload Identity Federation ------------------------------------------------------------------

resource "google_iam_workload_identity_pool" "github" {
  workload_identity_pool_id = "${local.id_base}-gh"
  display_name              = "GitHub Actions ${local.env_code}"
  description               = "GitHub Actions workflows of ${var.github_repository} (${var.environment})."

  depends_on = [google_project_service.base]
}

locals {
  # Only tokens of this repository, for the listed branches/environments/events, are accepted at all: the provider
  # refuses any other token before IAM is consulted. A job of a GitHub environment (its `sub` names the environment,
  # not the branch) is accepted only from the refs in github_deploy_refs (main): a workflow on another branch that
  # names the environment gets no credentials, whatever the environment's own protection rules say.
  github_subjects            = [for s in var.github_oidc_subjects : "repo:${var.github_repository}:${s}"]
  github_environment_prefix  = "repo:${var.github_repository}:environment:"
  github_attribute_condition = "assertion.repository == \"${var.github_repository}\" && assertion.sub in ${jsonencode(local.github_subjects)} && (!assertion.sub.startsWith(\"${local.github_environment_prefix}\") || assertion.ref in ${jsonencode(var.github_deploy_refs)})"
}

resource "google_iam_workload_identity_pool_provider" "github" {
  #checkov:skip=CKV_GCP_125:checkov cannot evaluate the generated condition; it pins assertion.repository to github_repository and assertion.sub to repo:<github_repository>:<subject> for each github_oidc_subjects entry (validated in variables.tf: no wildcards).
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github"
  display_name                       = "GitHub OIDC"
  description                        = "Tokens from https://token.actions.githubusercontent.com for ${var.github_repository}."

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
    "attribute.actor"      = "assertion.actor"
  }
  attribute_condition = local.github_attribute_condition

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

# --- CI: the service accounts GitHub Actions impersonates -------------------------------------------------------
#
# Each service account is impersonable by exact OIDC subjects only (principal://.../subject/<sub>; the sub claim
# names the repository, and the provider above admits only this repository's tokens):
#
# - ci       (output ci_service_account; GitHub variable GCP_CI_SERVICE_ACCOUNT) - every github_oidc_subjects entry
#            but `pull_request`: jobs in the GitHub environment of this stack (deploys, applies) and, in staging,
#            main-branch jobs (image push, DVC, drift). It deploys serving (terraform apply with a new image_tag),
#            pushes images and reads/writes DVC data and models. It cannot change IAM outside the serving resources,
#            keys, buckets or identities: those changes are applied by a project administrator (README.md, "Who
#            applies what").
# - ci-plan  (output ci_plan_service_account; repository variable GCP_CI_PLAN_SERVICE_ACCOUNT) - only when
#            github_oidc_subjects lists `pull_request`: `terraform plan` in pull requests. Read-only: no deploy role,
#            no object access to the data and model buckets, read-only on the state (infra.yml plans with
#            -lock=false, so it never writes the state bucket).

locals {
  github_principal      = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/subject/repo:${var.github_repository}"
  ci_subjects           = setsubtract(var.github_oidc_subjects, ["pull_request"])
  pull_request_planning = contains(var.github_oidc_subjects, "pull_request")
}

resource "google_service_account" "ci" {
  account_id   = "${local.id_base}-ci"
  display_name = "${local.name} CI"
  description  = "Deploys ${local.name}; impersonated by GitHub Actions of ${var.github_repository} (environment ${var.environment}${var.environment == "staging" ? " and main" : ""})."

  depends_on = [google_project_service.base]
}

resource "google_service_account_iam_member" "ci_workload_identity" {
  for_each = local.ci_subjects

  service_account_id = google_service_account.ci.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "${local.github_principal}:${each.value}"
}

# Read access for `terraform plan`: the refresh reads every resource of this module.
resource "google_project_iam_member" "ci_reads_project" {
  #checkov:skip=CKV_GCP_117:roles/viewer is read-only; Terraform must read every resource of this module to plan, and no narrower predefined role covers them all.
  project = var.gcp_project_id
  role    = "roles/viewer"
  member  = google_service_account.ci.member
}

# IAM policies (for the refresh of IAM members), API quota, and the alert policies and dashboards CI creates with
# the serving resources. The deploy roles of the serving mode are granted in serving_<mode>.tf.
resource "google_project_iam_member" "ci_project" {
  for_each = toset([
    "roles/iam.securityReviewer",
    "roles/serviceusage.serviceUsageConsumer",
    "roles/monitoring.alertPolicyEditor",
    "roles/monitoring.dashboardEditor",
  ])

  project = var.gcp_project_id
  role    = each.value
  member  = google_service_account.ci.member
}

# CI deploys workloads that run as the runtime service account.
resource "google_service_account_iam_member" "ci_acts_as_runtime" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.ci.member
}

resource "google_artifact_registry_repository_iam_member" "ci_pushes_images" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.ci.member
}

# dvc push/pull (data bucket), model publication (model bucket) and the Terraform state.
resource "google_storage_bucket_iam_member" "ci_objects" {
  for_each = {
    data   = google_storage_bucket.this["data"].name
    models = google_storage_bucket.this["models"].name
    state  = var.state_bucket
  }

  bucket = each.value
  role   = "roles/storage.objectAdmin"
  member = google_service_account.ci.member
}

# --- Pull requests: plan only -------------------------------------------------------------------------------------

resource "google_service_account" "ci_plan" {
  count = local.pull_request_planning ? 1 : 0

  account_id   = "${local.id_base}-plan" # 30 characters at most
  display_name = "${local.name} CI plan"
  description  = "Read-only terraform plan of ${local.name}; impersonated by pull requests of ${var.github_repository}."

  depends_on = [google_project_service.base]
}

resource "google_service_account_iam_member" "ci_plan_workload_identity" {
  count = local.pull_request_planning ? 1 : 0

  service_account_id = google_service_account.ci_plan[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "${local.github_principal}:pull_request"
}

# Read every resource of this module (viewer), their IAM policies (securityReviewer), and bill the API calls to the
# project (serviceUsageConsumer, needed with user_project_override). Object reads of the data and model buckets are
# closed in storage.tf (objects_not_for_project_viewers): roles/viewer alone grants no storage.objects.get.
resource "google_project_iam_member" "ci_plan_reads_project" {
  #checkov:skip=CKV_GCP_117:roles/viewer is read-only; terraform plan must read every resource of this module, and no narrower predefined role covers them all.
  count = local.pull_request_planning ? 1 : 0

  project = var.gcp_project_id
  role    = "roles/viewer"
  member  = google_service_account.ci_plan[0].member
}

resource "google_project_iam_member" "ci_plan_project" {
  for_each = local.pull_request_planning ? toset([
    "roles/iam.securityReviewer",
    "roles/serviceusage.serviceUsageConsumer",
  ]) : toset([])

  project = var.gcp_project_id
  role    = each.value
  member  = google_service_account.ci_plan[0].member
}

# The state only: read and list. No lock: pull-request plans run with -lock=false (a plan never writes the state,
# and a lock it could create it could also delete, under a running apply).
resource "google_storage_bucket_iam_member" "ci_plan_reads_state" {
  count = local.pull_request_planning ? 1 : 0

  bucket = var.state_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.ci_plan[0].member
}
