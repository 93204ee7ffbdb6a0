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

# Environments in other AWS accounts (registry_pull_account_ids) may pull, never push.
resource "aws_ecr_repository_policy" "cross_account_pull" {
  count = var.create_image_repository && length(var.registry_pull_account_ids) > 0 ? 1 : 0

  repository = aws_ecr_repository.app[0].name
  policy     = data.aws_iam_policy_document.cross_account_pull.json
}

data "aws_iam_policy_document" "cross_account_pull" {
  statement {
    sid     = "PullFromOtherEnvironmentAccounts"
    actions = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "AWS"
      identifiers = [for id in var.registry_pull_account_ids : "arn:${local.partition}:iam::${id}:root"]
    }
  }
}
