# GitHub Actions reaches AWS through OIDC federation only: no access key exists anywhere. Three roles, each
# assumable only by this repository and only from one kind of job (the `sub` claim GitHub signs):
#
# - ci       (output ci_role_arn; GitHub *environment* variable AWS_CI_ROLE_ARN) - jobs that declare
#            `environment: <this environment>`: deploys (`make deploy`) and infrastructure applies. AWS trusts only
#            the `sub` claim, which for an environment job names the environment, not the branch: the environment's
#            deployment branch rule (main only, docs/runbooks/deploy.md) is what keeps other branches out, so set it
#            before the first deploy. The role is still bounded: the AWS services this stack uses (no
#            PowerUserAccess), roles it creates or changes must carry the permissions boundary `<name>-ci-boundary`
#            (no IAM writes at all), and it can change neither itself nor that boundary - an administrator does
#            (`make infra-apply` with their own credentials) when this file changes them.
# - ci-main  (output ci_main_role_arn; *repository* variable AWS_CI_ROLE_ARN) - main-branch jobs without an
#            environment: build and push the image, DVC push/pull, drift checks. Only in the stack that owns the image
#            repository and the DVC remote (staging).
# - ci-plan  (output ci_plan_role_arn; repository variable AWS_CI_PLAN_ROLE_ARN) - `terraform plan` in pull
#            requests: read-only, denied the objects of the data and model buckets, may hold the state locks of
#            the environments in this account.

locals {
  github_oidc_host         = "token.actions.githubusercontent.com"
  github_oidc_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
  github_subject_prefix    = "repo:${var.github_repository}"
  state_bucket_arn         = "arn:${local.partition}:s3:::${var.state_bucket}"
  state_buckets_arn        = "arn:${local.partition}:s3:::${var.project}-tfstate-*"
  bucket_arns              = [for bucket in aws_s3_bucket.project : bucket.arn]
  bucket_object_arns       = [for bucket in aws_s3_bucket.project : "${bucket.arn}/*"]

  ci_role_arn       = "arn:${local.partition}:iam::${local.account_id}:role/${local.name}-ci"
  stack_roles_arn   = "arn:${local.partition}:iam::${local.account_id}:role/${local.name}-*"
  stack_policies    = "arn:${local.partition}:iam::${local.account_id}:policy/${local.name}-*"
  iam_write_actions = ["iam:Add*", "iam:Attach*", "iam:Create*", "iam:Delete*", "iam:Detach*", "iam:Put*", "iam:Remove*", "iam:Set*", "iam:Tag*", "iam:Untag*", "iam:Update*", "iam:Upload*"]

  # The AWS services this stack creates or reads, whole: the ceiling of CI (instead of PowerUserAccess, which is
  # every service) and of every role the stack creates (the permissions boundary). IAM is granted separately.
  stack_services = [
    "application-autoscaling:*",
    "budgets:*",
    "cloudwatch:*",
    "ec2:*",
    "ecr:*",
    "ecs:*",
    "eks:*",
    "elasticloadbalancing:*",
    "emr-serverless:*",
    "events:*",
    "kms:*",
    "logs:*",
    "s3:*",
    "sagemaker:*",
    # SageMaker managed MLflow's data plane (tracking_server = managed): every client call is SigV4-signed with it.
    "sagemaker-mlflow:*",
    "scheduler:*",
    "sns:*",
    "wafv2:*",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "sts:GetCallerIdentity",
  ]
  # feature_store = feast: the online tables (feature_store.tf); absent from the ceiling of a stack without them
  stack_services_all = concat(local.stack_services, length(local.feature_views) > 0 ? ["dynamodb:*"] : [])
}

# The permissions boundary of every role this stack creates (all but ci itself): the stack's services and IAM
# reads, never an IAM write. Whatever policy CI writes on such a role, the role cannot grant or escalate anything.
resource "aws_iam_policy" "boundary" {
  name        = "${local.name}-ci-boundary"
  description = "Permissions boundary of the roles of ${local.name}: its AWS services, no IAM writes"
  policy      = data.aws_iam_policy_document.boundary.json
}

data "aws_iam_policy_document" "boundary" {
  #checkov:skip=CKV_AWS_356:A permissions boundary is a ceiling, not a grant: it names services, each role's own policy names resources.
  #checkov:skip=CKV_AWS_111:A permissions boundary is a ceiling, not a grant: each role's own policy limits its writes to its resources.
  statement {
    sid       = "StackServices"
    actions   = concat(local.stack_services_all, ["iam:Get*", "iam:List*", "iam:PassRole"])
    resources = ["*"]
  }

  statement {
    sid       = "NoIamWrites"
    effect    = "Deny"
    actions   = local.iam_write_actions
    resources = ["*"]
  }
}

# CI's services: the stack's services in place of PowerUserAccess.
resource "aws_iam_policy" "ci_services" {
  name        = "${local.name}-ci-services"
  description = "The AWS services ${local.name} uses, for its CI role (IAM granted separately)"
  policy      = data.aws_iam_policy_document.ci_services.json
}

data "aws_iam_policy_document" "ci_services" {
  #checkov:skip=CKV_AWS_356:Terraform creates these resources, so their ARNs do not exist before the apply; limited to the stack's services.
  #checkov:skip=CKV_AWS_111:Terraform creates these resources, so their ARNs do not exist before the apply; limited to the stack's services.
  statement {
    sid       = "StackServices"
    actions   = local.stack_services_all
    resources = ["*"]
  }
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1

  url = "https://${local.github_oidc_host}"
}

# Trust policies: the audience is STS, the subject one exact value per kind of job (no wildcards).
data "aws_iam_policy_document" "github_trust" {
  for_each = {
    ci      = ["${local.github_subject_prefix}:environment:${var.environment}"]
    ci-main = ["${local.github_subject_prefix}:ref:refs/heads/main"]
    ci-plan = ["${local.github_subject_prefix}:pull_request"]
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:sub"
      values   = each.value
    }
  }
}

# Environment role: deploy and apply

resource "aws_iam_role" "ci" {
  name                 = "${local.name}-ci"
  description          = "Deploys and applies ${local.name} from ${var.github_repository} (GitHub environment ${var.environment})"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["ci"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "ci_services" {
  role       = aws_iam_role.ci.name
  policy_arn = aws_iam_policy.ci_services.arn
}

resource "aws_iam_role_policy" "ci" {
  name   = "manage-stack-iam-and-state"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci.json
}

data "aws_iam_policy_document" "ci" {
  # Creating a role, or changing what it may do, only with the boundary on it.
  statement {
    sid = "WriteBoundedStackRolesOnly"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRolePolicy",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
    ]
    resources = [local.stack_roles_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.boundary.arn]
    }
  }

  statement {
    sid       = "AttachOnlyReadOnlyToBoundedRoles"
    actions   = ["iam:AttachRolePolicy", "iam:DetachRolePolicy"]
    resources = [local.stack_roles_arn]

    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = ["arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"]
    }

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.boundary.arn]
    }
  }

  statement {
    sid = "ManageThisStacksRoles"
    actions = [
      "iam:DeleteRole",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:ListRoleTags",
      "iam:PassRole",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.stack_roles_arn]
  }

  # The role itself, its services policy and the boundary are out of its reach (an explicit deny wins over the
  # role/<name>-* grants above, whose pattern matches this role too).
  statement {
    sid       = "NeverChangeItselfOrTheBoundary"
    effect    = "Deny"
    actions   = local.iam_write_actions
    resources = [local.ci_role_arn, aws_iam_policy.boundary.arn, aws_iam_policy.ci_services.arn]
  }

  statement {
    sid       = "NeverRemoveABoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadPolicies"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions", "iam:ListPolicyTags"]
    resources = ["arn:${local.partition}:iam::aws:policy/*", local.stack_policies]
  }

  statement {
    sid       = "ServiceLinkedRolesOfTheStacksServices"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values = [
        "ecs.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "ecs.application-autoscaling.amazonaws.com",
        "ops.emr-serverless.amazonaws.com",
        "sagemaker.application-autoscaling.amazonaws.com",
      ]
    }
  }

  statement {
    sid = "ManageGithubOidcProvider"
    actions = [
      "iam:AddClientIDToOpenIDConnectProvider",
      "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider",
      "iam:GetOpenIDConnectProvider",
      "iam:ListOpenIDConnectProviderTags",
      "iam:RemoveClientIDFromOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider",
      "iam:UntagOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
    ]
    resources = ["arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.github_oidc_host}"]
  }

  statement {
    sid       = "FindGithubOidcProvider"
    actions   = ["iam:ListOpenIDConnectProviders"]
    resources = ["*"]
  }

  statement {
    sid       = "ListStateBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  statement {
    sid       = "ReadWriteStateAndLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.state_bucket_arn}/*"]
  }
}

# Main-branch role: image, data and models, no infrastructure

resource "aws_iam_role" "ci_main" {
  count = var.create_main_branch_role ? 1 : 0

  name                 = "${local.name}-ci-main"
  description          = "Image builds, DVC and drift checks of ${var.github_repository} on main"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["ci-main"].json
  max_session_duration = 3600
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "ci_main" {
  count = var.create_main_branch_role ? 1 : 0

  name   = "push-image-sync-data"
  role   = aws_iam_role.ci_main[0].id
  policy = data.aws_iam_policy_document.ci_main.json
}

data "aws_iam_policy_document" "ci_main" {
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [local.image_repository_arn]
  }

  statement {
    sid       = "ListProjectBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = local.bucket_arns
  }

  statement {
    sid       = "ReadWriteProjectObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = local.bucket_object_arns
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

# Pull-request role: plan only

resource "aws_iam_role" "ci_plan" {
  name                 = "${local.name}-ci-plan"
  description          = "terraform plan of ${local.name} from pull requests of ${var.github_repository}"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["ci-plan"].json
  max_session_duration = 3600
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy_attachment" "ci_plan_read_only" {
  role       = aws_iam_role.ci_plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

resource "aws_iam_role_policy" "ci_plan" {
  name   = "read-state-hold-lock-no-data"
  role   = aws_iam_role.ci_plan.id
  policy = data.aws_iam_policy_document.ci_plan.json
}

# A pull request plans every environment: with both in one account, this role reads both states.
data "aws_iam_policy_document" "ci_plan" {
  statement {
    sid       = "ReadStates"
    actions   = ["s3:ListBucket", "s3:GetObject"]
    resources = [local.state_buckets_arn, "${local.state_buckets_arn}/*"]
  }

  statement {
    sid       = "HoldStateLocks"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.state_buckets_arn}/*.tflock"]
  }

  statement {
    sid     = "NoDataOrModelObjects"
    effect  = "Deny"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [
      "arn:${local.partition}:s3:::${var.project}-data-*/*",
      "arn:${local.partition}:s3:::${var.project}-models-*/*",
    ]
  }
}
