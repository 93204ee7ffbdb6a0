# The project's image repository, shared by the environments (an image is built once and promoted by its tag):
# immutable tags (a tag is a git SHA and always means the same image), scanned on push, KMS-encrypted, old images
# expiring. Created by the stack with create_image_repository = true; the other environments pull from it.

resource "aws_ecr_repository" "app" {
  count = var.create_image_repository ? 1 : 0

  name                 = var.project
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  count = var.create_image_repository ? 1 : 0

  repository = aws_ecr_repository.app[0].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Remove untagged images (superseded build layers)"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.ecr_untagged_image_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the most recent tagged images (rollback targets)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_max_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

# Environments in other AWS accounts (registry_pull_account_ids) may pull, never push; with batch_engine = "spark",
# EMR Serverless (its service principal, for this account and those) pulls the Spark image of the batch job.
resource "aws_ecr_repository_policy" "cross_account_pull" {
  count = var.create_image_repository && (length(var.registry_pull_account_ids) > 0 || var.batch_engine == "spark") ? 1 : 0

  repository = aws_ecr_repository.app[0].name
  policy     = data.aws_iam_policy_document.cross_account_pull.json
}

data "aws_iam_policy_document" "cross_account_pull" {
  dynamic "statement" {
    for_each = length(var.registry_pull_account_ids) > 0 ? [var.registry_pull_account_ids] : []

    content {
      sid     = "PullFromOtherEnvironmentAccounts"
      actions = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

      principals {
        type        = "AWS"
        identifiers = [for id in statement.value : "arn:${local.partition}:iam::${id}:root"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.batch_engine == "spark" ? [distinct(concat([local.account_id], var.registry_pull_account_ids))] : []

    content {
      sid     = "EmrServerlessPullsTheSparkImage"
      actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]

      principals {
        type        = "Service"
        identifiers = ["emr-serverless.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = statement.value
      }
    }
  }
}
