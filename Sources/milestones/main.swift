import MilestonesCLI

Milestones.runMain()
