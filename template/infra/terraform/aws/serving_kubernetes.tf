# serving = kubernetes: the service and the batch CronJob run on the organisation's existing EKS cluster (its name is
# var.cluster_name; organisations share clusters, so this stack never creates one). The manifests are in
# deploy/kubernetes/ and CD applies them (`make deploy`); this file holds the cloud side: the IAM role of each
# workload, trusted through IRSA by exactly one service account of this environment's namespace, and the CI role's
# access to that namespace. Storage, registry and the CI roles are the shared files' (storage.tf, registry.tf,
# identity.tf). Until cluster_name is set the first apply creates those shared resources only, like the other serving
# modes before their first image; deploying an image (image_tag) needs the cluster.

variable "cluster_name" {
  description = "Name of the existing EKS cluster the service runs on (envs/<environment>.tfvars); empty until it is known."
  type        = string
  default     = ""

  validation {
    condition     = var.cluster_name == "" || can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be the name of an existing EKS cluster."
  }
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

variable "grant_ci_cluster_access" {
  description = "Give the ci role an EKS access entry with edit rights in this environment's namespace only. False when the platform team manages the cluster's access entries."
  type        = bool
  default     = true
}

variable "batch_input_key" {
  description = "Object key (in the data bucket) of the table the batch CronJob scores."
  type        = string
  default     = "batch/input/records.csv"
}

variable "batch_output_key" {
  description = "Object key (in the data bucket) the batch CronJob writes its predictions to."
  type        = string
  default     = "batch/output/predictions.csv"
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
  cluster_oidc_issuer = local.cluster_enabled ? trimprefix(data.aws_eks_cluster.this[0].identity[0].oidc[0].issuer, "https://") : ""
  data_bucket_arn     = aws_s3_bucket.project["data"].arn
  batch_output_folder = "${dirname(var.batch_output_key)}/"
  service_url         = var.service_domain != "" ? "https://${var.service_domain}" : ""
}

data "aws_eks_cluster" "this" {
  count = local.cluster_enabled ? 1 : 0

  name = var.cluster_name

  lifecycle {
    postcondition {
      condition     = try(self.identity[0].oidc[0].issuer, "") != ""
      error_message = "EKS cluster ${var.cluster_name} has no OIDC issuer: IRSA needs one (and its IAM OIDC provider)."
    }
  }
}

# The cluster's IAM OIDC provider, created with the cluster by its owners (eksctl utils associate-iam-oidc-provider).
data "aws_iam_openid_connect_provider" "cluster" {
  count = local.cluster_enabled ? 1 : 0

  url = data.aws_eks_cluster.this[0].identity[0].oidc[0].issuer
}

# An image is deployed to the cluster: refuse a deploy before cluster_name is set.
resource "terraform_data" "kubernetes_cluster" {
  count = local.serving_enabled ? 1 : 0

  input = var.cluster_name

  lifecycle {
    precondition {
      condition     = local.cluster_enabled
      error_message = "Set cluster_name in envs/${var.environment}.tfvars (the organisation's EKS cluster) before deploying an image."
    }
  }
}

# IRSA: each role is assumable only with a token of its own service account in this environment's namespace.
resource "aws_iam_role" "workload" {
  for_each = local.cluster_enabled ? local.kubernetes_service_accounts : {}

  name                 = "${local.name}-k8s-${each.key}"
  description          = "Pods of ${each.value} in namespace ${local.kubernetes_namespace} of EKS cluster ${var.cluster_name}"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Action    = "sts:AssumeRoleWithWebIdentity"
        Principal = { Federated = data.aws_iam_openid_connect_provider.cluster[0].arn }
        Condition = {
          StringEquals = {
            "${local.cluster_oidc_issuer}:aud" = "sts.amazonaws.com"
            "${local.cluster_oidc_issuer}:sub" = "system:serviceaccount:${local.kubernetes_namespace}:${each.value}"
          }
        }
      },
    ]
  })
  permissions_boundary = aws_iam_policy.boundary.arn
}

# The service reads the model bucket and writes its inference log under the data bucket's inference/ prefix.
resource "aws_iam_role_policy" "workload_server" {
  count = local.cluster_enabled ? 1 : 0

  name   = "read-models-write-inference-log"
  role   = aws_iam_role.workload["server"].id
  policy = data.aws_iam_policy_document.workload_server.json
}

data "aws_iam_policy_document" "workload_server" {
  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.project["models"].arn, "${aws_s3_bucket.project["models"].arn}/*"]
  }

  statement {
    sid       = "DecryptModelArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  # serving/log_shipper.py in the pod uploads the closed inference log files: new objects under the prefix only.
  statement {
    sid       = "WriteInferenceLogOnly"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.project["data"].arn}/${local.inference_log_prefix}*"]
  }

  statement {
    sid       = "EncryptInferenceLog"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# The batch job (the CronJob, or the Spark application's driver and executors: batch_engine) reads its input (a
# file, or the files under a prefix) and writes its output folder: the predictions, their rejects
# (<stem>.rejects.<ext>) and the validation report. Spark's committer writes part files under <output>/_temporary/
# and moves them; a rerun overwrites, so it deletes in that folder too.
resource "aws_iam_role_policy" "workload_batch" {
  count = local.cluster_enabled ? 1 : 0

  name   = "score-batch"
  role   = aws_iam_role.workload["batch"].id
  policy = data.aws_iam_policy_document.workload_batch.json
}

data "aws_iam_policy_document" "workload_batch" {
  statement {
    sid       = "ReadBatchInput"
    actions   = ["s3:GetObject"]
    resources = ["${local.data_bucket_arn}/${var.batch_input_key}*"]
  }

  statement {
    sid       = "WriteBatchOutputFolder"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.data_bucket_arn}/${local.batch_output_folder}*"]
  }

  statement {
    sid       = "ListBatchPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [local.data_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.batch_input_key}*", "${local.batch_output_folder}*"]
    }
  }

  statement {
    sid       = "UseProjectKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# CD (the ci role of this environment) edits this namespace only: it cannot read or change other teams' namespaces
# of the shared cluster. The namespace itself is created once by a cluster admin (deploy/kubernetes/namespaces.yaml).
resource "aws_eks_access_entry" "ci" {
  count = local.cluster_enabled && var.grant_ci_cluster_access ? 1 : 0

  cluster_name  = data.aws_eks_cluster.this[0].name
  principal_arn = aws_iam_role.ci.arn
  type          = "STANDARD"
}

resource "aws_eks_access_policy_association" "ci" {
  count = local.cluster_enabled && var.grant_ci_cluster_access ? 1 : 0

  cluster_name  = data.aws_eks_cluster.this[0].name
  principal_arn = aws_eks_access_entry.ci[0].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"

  access_scope {
    type       = "namespace"
    namespaces = [local.kubernetes_namespace]
  }
}
