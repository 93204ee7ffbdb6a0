# serving = kubernetes: `terraform test` plans against a mocked AWS provider (no AWS calls, no cluster), run with
# either environment's values: terraform test -filter=tests/serving_kubernetes.tftest.hcl -var-file=envs/staging.tfvars

mock_provider "aws" {
  source = "./tests/mocks"

  # The organisation's cluster, as the EKS API describes it.
  mock_data "aws_eks_cluster" {
    defaults = {
      name     = "platform"
      identity = [{ oidc = [{ issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF" }] }]
    }
  }
  mock_data "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF" }
  }
}

variables {
  # CD deploys by digest (production refuses a tag alone).
  image_digest   = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  cluster_name   = "platform"
  service_domain = "churn.example.org"
  image_tag      = "0123456789abcdef"
}

run "workload_roles_trust_only_their_service_accounts" {
  command = plan

  assert {
    condition = jsondecode(aws_iam_role.workload["server"].assume_role_policy).Statement[0].Condition.StringEquals == {
      "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF:aud" = "sts.amazonaws.com"
      "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF:sub" = "system:serviceaccount:${var.project}-${var.environment}:${var.project}"
    }
    error_message = "the service's role must trust exactly the service account <project> of namespace <project>-<environment>"
  }

  assert {
    condition     = jsondecode(aws_iam_role.workload["batch"].assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF:sub"] == "system:serviceaccount:${var.project}-${var.environment}:${var.project}-batch"
    error_message = "the batch job's role must trust exactly the service account <project>-batch of the namespace"
  }

  assert {
    condition = (
      one([for statement in data.aws_iam_policy_document.workload_server.statement : statement.actions if statement.sid == "WriteInferenceLogOnly"]) == toset(["s3:PutObject"])
      && output.inference_log_uri == "s3://${var.project}-data-${var.environment}/inference/"
    )
    error_message = "the service's role cannot add inference log files under s3://<data bucket>/inference/ (make k8s-manifests reads inference_log_uri)"
  }

  assert {
    condition     = length(jsondecode(aws_iam_role.workload["server"].assume_role_policy).Statement) == 1 && jsondecode(aws_iam_role.workload["server"].assume_role_policy).Statement[0].Principal.Federated == data.aws_iam_openid_connect_provider.cluster[0].arn
    error_message = "the only trusted principal is the cluster's OIDC provider"
  }

  assert {
    condition     = aws_eks_access_policy_association.ci[0].access_scope[0].type == "namespace" && length(aws_eks_access_policy_association.ci[0].access_scope[0].namespaces) == 1 && contains(aws_eks_access_policy_association.ci[0].access_scope[0].namespaces, "${var.project}-${var.environment}")
    error_message = "CD's cluster access must be limited to this environment's namespace"
  }

  assert {
    condition     = output.service_url == "https://churn.example.org" && output.kubernetes_namespace == "${var.project}-${var.environment}"
    error_message = "service_url and the namespace are what make k8s-manifests and the docs expect"
  }
}

# The batch job's role serves either engine (batch_engine): the CronJob's streamed commit and Spark's committer both
# write, rename and delete in the output folder, and a folder of input files is read whole.
run "batch_role_writes_the_output_folder_for_either_engine" {
  command = plan

  variables {
    batch_engine = "spark"
  }

  # the buckets' ARNs are known only after an apply: give them one, to compare the policy's resources
  override_resource {
    target          = aws_s3_bucket.project
    override_during = plan
    values          = { arn = "arn:aws:s3:::project-bucket" }
  }

  assert {
    condition = (
      one([for statement in data.aws_iam_policy_document.workload_batch.statement : statement.resources if statement.sid == "WriteBatchOutputFolder"]) == toset(["arn:aws:s3:::project-bucket/batch/output/*"])
      && contains(one([for statement in data.aws_iam_policy_document.workload_batch.statement : statement.actions if statement.sid == "WriteBatchOutputFolder"]), "s3:DeleteObject")
    )
    error_message = "the batch role must write and delete in batch/output/ (predictions, rejects, report; Spark's _temporary and overwrite)"
  }

  assert {
    condition     = one([for statement in data.aws_iam_policy_document.workload_batch.statement : statement.resources if statement.sid == "ReadBatchInput"]) == toset(["arn:aws:s3:::project-bucket/batch/input/records.csv*"])
    error_message = "the batch role reads the input key and what is under it, nothing else"
  }

  assert {
    condition     = output.batch_engine == "spark"
    error_message = "make k8s-manifests reads the engine from the output batch_engine"
  }
}

run "before_cluster_name_nothing_in_the_cluster_is_planned" {
  command = plan

  variables {
    cluster_name = ""
    image_tag    = ""
  }

  assert {
    condition     = length(aws_iam_role.workload) == 0 && length(aws_eks_access_entry.ci) == 0 && output.server_workload_identity == ""
    error_message = "without cluster_name the first apply must create the shared resources only"
  }
}

run "a_deploy_needs_the_cluster" {
  command = plan

  variables {
    cluster_name = ""
  }

  expect_failures = [terraform_data.kubernetes_cluster]
}
