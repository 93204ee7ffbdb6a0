# serving = kubernetes: the service and the batch CronJob run on the organisation's existing GKE cluster (its name is
# var.cluster_name; organisations share clusters, so this stack never creates one). The manifests are in
# deploy/kubernetes/ and CD applies them (`make deploy`); this file holds the cloud side: GKE Workload Identity lets
# exactly one Kubernetes service account of this environment's namespace act as each Google service account (the
# service as the runtime service account of identity.tf, which reads the model bucket; the batch job as its own),
# and the ci service account may fetch the cluster's credentials. Its rights inside the namespace are a Kubernetes
# RoleBinding a cluster admin creates (docs/ci-cd.md). Until cluster_name is set the first apply creates the shared
# resources only, like the other serving modes before their first image; deploying an image needs the cluster.

variable "cluster_name" {
  description = "Name of the existing GKE cluster the service runs on (envs/<environment>.tfvars); empty until it is known."
  type        = string
  default     = ""

  validation {
    condition     = var.cluster_name == "" || can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be the name of an existing GKE cluster."
  }
}

variable "cluster_location" {
  description = "Region or zone of the cluster; empty: var.region."
  type        = string
  default     = ""
}

variable "cluster_project_id" {
  description = "Project of the cluster when the platform team hosts it in its own project; empty: gcp_project_id."
  type        = string
  default     = ""
}

variable "ingress_class" {
  description = "IngressClass of the service's Ingress. The cluster's internal controller by default (nginx-internal: a load balancer reachable only from the organisation's network); a public class (e.g. nginx) is an explicit choice (docs/security.md)."
  type        = string
  default     = "nginx-internal"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.ingress_class))
    error_message = "ingress_class must be the name of an IngressClass (lowercase letters, digits and hyphens)."
  }
}

variable "service_domain" {
  description = "Public DNS name of the service: the Ingress host (make k8s-manifests); its certificate is the Secret <project>-tls."
  type        = string
  default     = ""
}

locals {
  # deploy/kubernetes/<environment>/kustomization.yaml: namespace <project>-<environment>.
  kubernetes_namespace = local.name
  # The service accounts of deploy/kubernetes/base/serviceaccount.yaml, by workload.
  kubernetes_service_accounts = {
    server = var.project
    batch  = "${var.project}-batch"
  }
  cluster_enabled     = var.cluster_name != ""
  cluster_project     = var.cluster_project_id != "" ? var.cluster_project_id : var.gcp_project_id
  cluster_location    = var.cluster_location != "" ? var.cluster_location : var.region
  workload_pool       = "${local.cluster_project}.svc.id.goog"
  batch_output_folder = "${dirname(var.batch_output_path)}/"
  workload_service_accounts = {
    server = google_service_account.runtime
    batch  = google_service_account.batch
  }
}

data "google_container_cluster" "this" {
  count = local.cluster_enabled ? 1 : 0

  name     = var.cluster_name
  location = local.cluster_location
  project  = local.cluster_project

  lifecycle {
    postcondition {
      condition     = try(self.workload_identity_config[0].workload_pool, "") == local.workload_pool
      error_message = "GKE cluster ${var.cluster_name} does not have Workload Identity (workload pool ${local.workload_pool}) enabled."
    }
  }
}

# An image is deployed to the cluster: refuse a deploy before cluster_name is set.
resource "terraform_data" "kubernetes_cluster" {
  count = local.serving_enabled ? 1 : 0

  input = var.cluster_name

  lifecycle {
    precondition {
      condition     = local.cluster_enabled
      error_message = "Set cluster_name in envs/${var.environment}.tfvars (the organisation's GKE cluster) before deploying an image."
    }
  }
}

resource "google_service_account" "batch" {
  account_id   = "${local.id_base}-batch"
  display_name = "${local.name} batch"
  description  = "Runs the ${var.project} batch CronJob in ${var.environment}: reads its input, writes its output folder."

  depends_on = [google_project_service.base]
}

# Workload Identity: each Google service account trusts one Kubernetes service account of this namespace only.
resource "google_service_account_iam_member" "workload_identity" {
  for_each = local.cluster_enabled ? local.kubernetes_service_accounts : {}

  service_account_id = local.workload_service_accounts[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${local.kubernetes_namespace}/${each.value}]"
}

resource "google_project_iam_member" "batch" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])

  project = var.gcp_project_id
  role    = each.value
  member  = google_service_account.batch.member
}

resource "google_storage_bucket_iam_member" "batch_reads_data" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.batch.member
}

resource "google_storage_bucket_iam_member" "batch_writes_predictions" {
  bucket = google_storage_bucket.this["data"].name
  role   = "roles/storage.objectUser"
  member = google_service_account.batch.member

  condition {
    title      = "batch-output-prefix-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["data"].name}/objects/${local.batch_output_folder}\")"
  }
}

# `gcloud container clusters get-credentials` for CD: cluster metadata only, no Kubernetes objects.
resource "google_project_iam_member" "ci_gets_cluster_credentials" {
  count = local.cluster_enabled ? 1 : 0

  project = local.cluster_project
  role    = "roles/container.clusterViewer"
  member  = google_service_account.ci.member
}

# The service, as returned to callers; empty until service_domain is set.
output "service_url" {
  description = "HTTPS URL of the service's Ingress (https://<service_domain>); empty until service_domain is set."
  value       = var.service_domain != "" ? "https://${var.service_domain}" : ""
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
